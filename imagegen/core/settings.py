"""Every setting the app reads, with its default: the one place that touches `os.environ`.

The infrastructure test (tests/infra) reads the `SETTINGS` table below and checks that
each name is either set by the Bicep templates or has a default, so a new setting goes
here first. Names follow the Azure Functions conventions where one exists
(`AzureWebJobsStorage`, `AzureWebJobsStorage__blobServiceUri` for managed identity).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from imagegen.core.limits import MOST_MAX_BATCH

# name -> (default, what it is). A default of None means "unset unless configured".
SETTINGS: dict[str, tuple[str | None, str]] = {
    "AzureWebJobsStorage": (None, "Storage connection string (local: UseDevelopmentStorage=true)"),
    "AzureWebJobsStorage__blobServiceUri": (None, "Blob endpoint for managed-identity access (Azure)"),
    "AzureWebJobsStorage__queueServiceUri": (None, "Queue endpoint for managed-identity access (Azure): render orders to the GPU pool and its answers"),
    "IMAGEGEN_RENDER_QUEUE": ("render-orders", "The queue the control plane orders batches on; the GPU pool answers on `<it>-outcomes`. Two apps that share a storage account need names of their own"),
    "IMAGEGEN_APP_ROLE": ("all", "The functions this app runs: `all` (one app: local, tests, `make demo`), `control` (HTTP API, gallery, orchestrations, blob and timer triggers: no GPU) or `render` (the GPU pool: renders the batches ordered on the `render-orders` queue)"),
    "AZURE_CLIENT_ID": (None, "Client id of the user-assigned managed identity (Azure)"),
    "IMAGEGEN_MODEL": ("tiny", "Hub id, local folder, or `tiny` (offline random test model: images are noise)"),
    "IMAGEGEN_MODEL_REVISION": (None, "Model revision (commit or branch) for hub models"),
    "IMAGEGEN_MODELS": ("", "A model catalog file (YAML or JSON: `models: {name: {source, revision, tiny_vae}}`) whose models jobs may name (`model:`); empty: only `IMAGEGEN_MODEL`"),
    "IMAGEGEN_MAX_LOADED_MODELS": ("1", "Most models a process keeps loaded at once; past it the least recently used is unloaded"),
    "IMAGEGEN_DEVICE": ("auto", "auto | cuda | mps | cpu"),
    "IMAGEGEN_MAX_BATCH": ("auto", "Images per GPU call: auto (up to 16 per GPU activity, split by free GPU memory) or a number"),
    "IMAGEGEN_TORCH_THREADS": ("auto", "torch CPU threads: auto (on a CPU device, one per core but one, which is left to the image checks and storage) or a number"),
    "IMAGEGEN_CHECK_PROCESSES": ("auto", "Processes that sign, check and store generated images beside the generating process: auto (one per 4 cores, 1 to 4), a number, or 0 (a thread of the generating process, sharing its interpreter lock)"),
    "IMAGEGEN_COMPILE": ("off", "torch.compile mode for the UNet and VAE on CUDA (e.g. `max-autotune-no-cudagraphs`), or `off`"),
    "IMAGEGEN_TINY_VAE": (None, "Hub id or folder of a tiny VAE (TAESD) for jobs with `speedups.tiny_vae`; unset: such jobs are refused"),
    "IMAGEGEN_ADAPTERS_DIR": ("", "A local folder of LoRA adapters (`NAME.safetensors`) jobs may name (`adapters:`), looked in before the `adapters` container; empty: the container only"),
    "IMAGEGEN_MAX_ADAPTER_BYTES": ("536870912", "Largest LoRA adapter file in bytes (512 MiB); a larger one is refused"),
    "IMAGEGEN_MAX_VARIANTS": ("64", "Most variants one job may expand to"),
    "IMAGEGEN_MAX_STEPS": ("150", "Most denoising steps per image"),
    "IMAGEGEN_MAX_SIDE": ("2048", "Largest width or height in pixels"),
    "IMAGEGEN_MAX_SOURCE_BYTES": ("10000000", "Largest img2img source image in bytes"),
    "IMAGEGEN_MAX_SOURCE_SIDE": ("4096", "Largest img2img source width or height in pixels"),
    "SAFETY_PROVIDER": (None, "local | azure (default: azure when CONTENT_SAFETY_ENDPOINT is set, else local)"),
    "CONTENT_SAFETY_ENDPOINT": (None, "Azure AI Content Safety endpoint"),
    "CONTENT_SAFETY_KEY": (None, "Key for Content Safety; unset in Azure (managed identity is used)"),
    "CONTENT_SAFETY_BLOCKLISTS": ("", "Comma-separated Content Safety blocklist names"),
    "SAFETY_THRESHOLDS": ("", "Per-category block severity, e.g. `Sexual=2,Violence=4` (default 4)"),
    "SAFETY_BLOCKLIST_FILE": (None, "Extra local blocklist file, one term per line"),
    "IMAGEGEN_DEFAULT_SIZE": ("512x512", "Image size for prompt-only jobs (`.txt` drops: one prompt per line)"),
    "IMAGEGEN_DEFAULT_STEPS": ("25", "Denoising steps for prompt-only jobs (`.txt` drops)"),
    "IMAGEGEN_SCHEDULE_TICK": ("0 * * * * *", "How often the schedules timer looks for due schedules (NCRONTAB)"),
    "IMAGEGEN_GPU_PRICE_PER_HOUR": ("", "What an hour of the GPU costs, e.g. `3.40` (your currency; see docs/cost.md for each GPU type): manifests, summaries, the gallery and `imagegen status` then show each job's estimated cost; unset: GPU seconds only"),
    "IMAGEGEN_RETENTION_DAYS": ("30", "Days a job's orchestration history is kept after it ends (its manifest and images stay); 0 keeps it forever"),
    "IMAGEGEN_RETENTION_TICK": ("0 30 3 * * *", "When the retention timer purges the history of jobs that ended before IMAGEGEN_RETENTION_DAYS (NCRONTAB)"),
    "C2PA_SIGNER": ("local", "Content Credentials signer: `local` (development CA in .devhost/c2pa/, untrusted), `keyvault` or `off`"),
    "C2PA_KEYVAULT_URL": ("", "Key Vault URL holding the C2PA signing certificate (with C2PA_SIGNER=keyvault)"),
    "C2PA_CERT_NAME": ("", "Key Vault certificate (and key) name of the C2PA signing certificate"),
    "C2PA_CREATE_CERTIFICATE": ("self-signed", "With `keyvault`, when the certificate does not exist: `self-signed` (Key Vault creates one, EC P-256, so images are signed from the first deploy; valid, untrusted chain) or `off` (images are held until you bring one)"),
    "C2PA_TSA_URL": ("", "RFC 3161 timestamp authority URL for C2PA signatures; unset: no timestamp"),
    "C2PA_INCLUDE_PROMPT": ("false", "Record the prompt in the signed C2PA manifest (true/false)"),
    "IMAGEGEN_REVIEW": ("off", "`on`: every job without its own `review` waits for a reviewer before publishing (HTTP, drops, schedules)"),
    "IMAGEGEN_NOTIFY_URL": ("", "Webhook called when a job awaits review and when it ends, for jobs that name none (the operator's: used as set)"),
    "IMAGEGEN_NOTIFY_HOSTS": ("", "Comma-separated hosts a job's own `notify.url` may name (`*.example.com` for subdomains); empty: none"),
    "IMAGEGEN_PUBLIC_URL": ("", "The app's public base URL (https://app.example.com) for gallery links in notifications; unset: links are paths"),
    "IMAGEGEN_API_KEY": (None, "Key for `POST /api/images/generations`, sent as `api-key` or `Authorization: Bearer` (Foundry and OpenAI clients), besides function keys; unset: function keys only"),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (None, "Application Insights to send traces, metrics and logs to (Azure); unset: a local JSON-lines file"),
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": (None, "`Authorization=AAD;ClientId=<client id>`: send telemetry as that managed identity (Azure)"),
    "IMAGEGEN_TELEMETRY_FILE": (".devhost/telemetry.jsonl", "Local traces, metrics and logs as JSON lines (when Application Insights is not configured)"),
    "OTEL_EXPORTER_OTLP_ENDPOINT": (None, "Also send traces and metrics to this OTLP/HTTP collector (the standard OpenTelemetry variable)"),
    "IMAGEGEN_SIGN_IN": ("off", "`off` or `entra`: `entra` when Container Apps built-in authentication (Entra ID) guards every route but health, the Foundry route and the durable webhooks, which then take no function key; set by the Bicep"),
    "IMAGEGEN_FAULTS": ("", "Test-only fault injection, e.g. `flaky-*=fail-once`; unset in production"),
}


def _get(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return SETTINGS[name][0]
    return value


def _int(name: str, least: int = 1) -> int:
    value = _get(name)
    if value is None or not re.fullmatch(r"\s*[0-9]+\s*", value):
        raise ValueError(f"setting `{name}` must be a whole number of at least {least}, got {value!r}")
    if int(value) < least:
        raise ValueError(f"setting `{name}` must be a whole number of at least {least}, got {value!r}")
    return int(value)


def _price(name: str) -> float | None:
    """A price: a decimal number of at least 0, or None when unset."""
    value = (_get(name) or "").strip()
    if not value:
        return None
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        raise ValueError(f"setting `{name}` must be a price such as 3.40 (a decimal number, no currency sign), got {value!r}")
    return float(value)


def _thresholds(text: str) -> dict[str, int]:
    thresholds: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        category, _, severity = item.partition("=")
        try:
            thresholds[category.strip()] = int(severity)
        except ValueError:
            raise ValueError(
                f"setting `SAFETY_THRESHOLDS` must look like `Sexual=2,Violence=4`, got {text!r}"
            ) from None
    return thresholds


DEVICES = ("auto", "cuda", "mps", "cpu")


def max_batch_images(text: str) -> int | None:
    """`IMAGEGEN_MAX_BATCH` read by its one rule: None for `auto`, else 1 to 64."""
    if text == "auto":
        return None
    if re.fullmatch(r"[0-9]+", text) and 1 <= int(text) <= MOST_MAX_BATCH:
        return int(text)
    raise ValueError(f"setting `IMAGEGEN_MAX_BATCH` must be `auto` or a whole number from 1 to "
                     f"{MOST_MAX_BATCH}, got {text!r}")


def _device(text: str) -> str:
    if text not in DEVICES:
        raise ValueError(f"setting `IMAGEGEN_DEVICE` must be auto, cuda, mps or cpu, got {text!r}")
    return text


# Compiling costs minutes per (batch size, image size) on a cold replica: it stays off
# until bench/gpu_throughput.py shows the win on the GPU we deploy to.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _compile_mode(text: str) -> str | None:
    if text == "off":
        return None
    if text not in COMPILE_MODES:
        raise ValueError(f"setting `IMAGEGEN_COMPILE` must be `off` or one of {', '.join(COMPILE_MODES)}, got {text!r}")
    return text


def _faults(text: str) -> dict[str, str]:
    faults: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pattern, _, mode = item.partition("=")
        if mode not in ("fail-once", "fail-always", "fail-check-once", "fail-sign", "fail-drop"):
            raise ValueError(
                f"setting `IMAGEGEN_FAULTS` must look like `flaky-*=fail-once,broken-*=fail-always`, got {text!r}"
            )
        faults[pattern.strip()] = mode
    return faults


C2PA_SIGNERS = ("local", "keyvault", "off")
CREATE_CERTIFICATE = ("self-signed", "off")


def _create_certificate(value: str) -> str:
    if value not in CREATE_CERTIFICATE:
        raise ValueError(f"setting `C2PA_CREATE_CERTIFICATE` must be `self-signed` or `off`, got {value!r}")
    return value


def _c2pa_signer(signer: str, vault_url: str, cert_name: str) -> str:
    if signer not in C2PA_SIGNERS:
        raise ValueError(f"setting `C2PA_SIGNER` must be one of {', '.join(C2PA_SIGNERS)}, got {signer!r}")
    if signer == "keyvault":
        if not vault_url.startswith("https://"):
            raise ValueError(f"setting `C2PA_KEYVAULT_URL` must be an https:// Key Vault URL when "
                             f"`C2PA_SIGNER` is `keyvault`, got {vault_url!r}")
        if not cert_name:
            raise ValueError("setting `C2PA_CERT_NAME` must name the Key Vault certificate when "
                             "`C2PA_SIGNER` is `keyvault`, got ''")
    return signer


def _url_or_none(name: str) -> str | None:
    value = _get(name) or ""
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"setting `{name}` must be an http:// or https:// URL, got {value!r}")
    return value or None


def _bool(name: str) -> bool:
    value = (_get(name) or "").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"setting `{name}` must be `true` or `false`, got {value!r}")
    return value == "true"


SIGN_IN_MODES = ("off", "entra")


# One checker process signs, checks and stores about 10 SD 1.5 images (512x512) a second on
# one core of the dev VM (bench/checker_throughput.py): a GPU that makes more needs more of them.
CORES_PER_CHECK_PROCESS = 4
MOST_CHECK_PROCESSES = 4


def check_processes(text: str) -> int:
    """`IMAGEGEN_CHECK_PROCESSES` read by its one rule: `auto` is one per 4 cores, 1 to 4."""
    text = text.strip().lower()
    if text == "auto":
        return max(1, min(MOST_CHECK_PROCESSES, (os.cpu_count() or 1) // CORES_PER_CHECK_PROCESS))
    if re.fullmatch(r"[0-9]+", text) and int(text) <= 64:
        return int(text)
    raise ValueError(f"setting `IMAGEGEN_CHECK_PROCESSES` must be `auto` or a whole number from 0 to 64, got {text!r}")


APP_ROLES = ("all", "control", "render")


def _one_of(name: str, text: str, choices: tuple[str, ...]) -> str:
    """A setting that takes one of `choices` (any case); ValueError naming it and them."""
    value = text.strip().lower()
    if value not in choices:
        listed = ", ".join(f"`{choice}`" for choice in choices[:-1]) + f" or `{choices[-1]}`"
        raise ValueError(f"setting `{name}` must be {listed}, got {text!r}")
    return value


def _render_queue(text: str) -> str:
    # A Storage queue name (3-63 lowercase letters, digits, single hyphens), with room for `-outcomes`.
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,53}", text):
        raise ValueError("setting `IMAGEGEN_RENDER_QUEUE` must be 3-54 lowercase letters, digits and single "
                         f"hyphens (a Storage queue name, with room for `-outcomes`), got {text!r}")
    return text


def _on_off(name: str) -> bool:
    value = (_get(name) or "").strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"setting `{name}` must be `on` or `off`, got {value!r}")
    return value == "on"


@dataclass(frozen=True)
class Settings:
    storage_connection_string: str | None = None
    storage_blob_service_uri: str | None = None
    storage_queue_service_uri: str | None = None
    app_role: str = "all"
    render_queue: str = "render-orders"
    model: str = "tiny"
    model_revision: str | None = None
    models: str = ""  # the catalog file (imagegen.generation.catalog); empty: IMAGEGEN_MODEL alone
    max_loaded_models: int = 1
    device: str = "auto"
    max_batch: str = "auto"
    compile_mode: str | None = None
    torch_threads: str = "auto"
    check_processes: int = 1
    tiny_vae: str | None = None
    adapters_dir: str = ""  # a local folder of LoRA adapters (imagegen.storage.adapters), besides the container
    max_adapter_bytes: int = 536_870_912
    max_variants: int = 64
    max_steps: int = 150
    max_side: int = 2048
    max_source_bytes: int = 10_000_000
    max_source_side: int = 4096
    safety_provider: str = "local"
    content_safety_endpoint: str | None = None
    content_safety_key: str | None = None
    content_safety_blocklists: list[str] = field(default_factory=list)
    safety_thresholds: dict[str, int] = field(default_factory=dict)
    safety_blocklist_file: str | None = None
    default_size: str = "512x512"
    default_steps: int = 25
    retention_days: int = 30
    gpu_price_per_hour: float | None = None
    review: bool = False
    notify_url: str = ""
    notify_hosts: tuple[str, ...] = ()
    public_url: str = ""
    sign_in: str = "off"
    appinsights_connection_string: str | None = None
    appinsights_authentication_string: str | None = None
    telemetry_file: str = ".devhost/telemetry.jsonl"
    otlp_endpoint: str | None = None
    faults: dict[str, str] = field(default_factory=dict)
    c2pa_signer: str = "local"
    c2pa_keyvault_url: str | None = None
    c2pa_cert_name: str | None = None
    c2pa_create_certificate: str = "self-signed"
    c2pa_tsa_url: str | None = None
    c2pa_include_prompt: bool = False

    api_key: str | None = None

    def __post_init__(self) -> None:
        # Checked whenever settings are made, so no reader meets a value under its own rule.
        _device(self.device)
        max_batch_images(self.max_batch)

    @property
    def max_batch_images(self) -> int | None:
        """Images per GPU call as set, or None for `auto`."""
        return max_batch_images(self.max_batch)

    @classmethod
    def from_env(cls) -> "Settings":
        endpoint = _get("CONTENT_SAFETY_ENDPOINT")
        provider = _get("SAFETY_PROVIDER") or ("azure" if endpoint else "local")
        if provider not in ("local", "azure"):
            raise ValueError(f"setting `SAFETY_PROVIDER` must be `local` or `azure`, got {provider!r}")
        return cls(
            storage_connection_string=_get("AzureWebJobsStorage"),
            storage_blob_service_uri=_get("AzureWebJobsStorage__blobServiceUri"),
            storage_queue_service_uri=_get("AzureWebJobsStorage__queueServiceUri"),
            app_role=_one_of("IMAGEGEN_APP_ROLE", _get("IMAGEGEN_APP_ROLE") or "all", APP_ROLES),
            render_queue=_render_queue(_get("IMAGEGEN_RENDER_QUEUE") or "render-orders"),
            model=_get("IMAGEGEN_MODEL") or "tiny",
            model_revision=_get("IMAGEGEN_MODEL_REVISION"),
            models=(_get("IMAGEGEN_MODELS") or "").strip(),
            max_loaded_models=_int("IMAGEGEN_MAX_LOADED_MODELS"),
            device=(_get("IMAGEGEN_DEVICE") or "auto").strip().lower(),
            max_batch=(_get("IMAGEGEN_MAX_BATCH") or "auto").strip().lower(),
            compile_mode=_compile_mode(_get("IMAGEGEN_COMPILE") or "off"),
            torch_threads=_get("IMAGEGEN_TORCH_THREADS") or "auto",
            check_processes=check_processes(_get("IMAGEGEN_CHECK_PROCESSES") or "auto"),
            tiny_vae=_get("IMAGEGEN_TINY_VAE"),
            adapters_dir=(_get("IMAGEGEN_ADAPTERS_DIR") or "").strip(),
            max_adapter_bytes=_int("IMAGEGEN_MAX_ADAPTER_BYTES"),
            max_variants=_int("IMAGEGEN_MAX_VARIANTS"),
            max_steps=_int("IMAGEGEN_MAX_STEPS"),
            max_side=_int("IMAGEGEN_MAX_SIDE"),
            max_source_bytes=_int("IMAGEGEN_MAX_SOURCE_BYTES"),
            max_source_side=_int("IMAGEGEN_MAX_SOURCE_SIDE"),
            safety_provider=provider,
            content_safety_endpoint=endpoint,
            content_safety_key=_get("CONTENT_SAFETY_KEY"),
            content_safety_blocklists=[
                name.strip() for name in (_get("CONTENT_SAFETY_BLOCKLISTS") or "").split(",") if name.strip()
            ],
            safety_thresholds=_thresholds(_get("SAFETY_THRESHOLDS") or ""),
            safety_blocklist_file=_get("SAFETY_BLOCKLIST_FILE"),
            default_size=_get("IMAGEGEN_DEFAULT_SIZE") or "512x512",
            default_steps=_int("IMAGEGEN_DEFAULT_STEPS"),
            retention_days=_int("IMAGEGEN_RETENTION_DAYS", least=0),
            gpu_price_per_hour=_price("IMAGEGEN_GPU_PRICE_PER_HOUR"),
            review=_on_off("IMAGEGEN_REVIEW"),
            notify_url=(_get("IMAGEGEN_NOTIFY_URL") or "").strip(),
            notify_hosts=tuple(host.strip().lower().rstrip(".") for host in (_get("IMAGEGEN_NOTIFY_HOSTS") or "").split(",")
                               if host.strip()),
            public_url=(_get("IMAGEGEN_PUBLIC_URL") or "").strip().rstrip("/"),
            sign_in=_one_of("IMAGEGEN_SIGN_IN", _get("IMAGEGEN_SIGN_IN") or "off", SIGN_IN_MODES),
            appinsights_connection_string=_get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            appinsights_authentication_string=_get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"),
            telemetry_file=_get("IMAGEGEN_TELEMETRY_FILE") or ".devhost/telemetry.jsonl",
            otlp_endpoint=_get("OTEL_EXPORTER_OTLP_ENDPOINT"),
            faults=_faults(_get("IMAGEGEN_FAULTS") or ""),
            c2pa_signer=_c2pa_signer(_get("C2PA_SIGNER") or "local", _get("C2PA_KEYVAULT_URL") or "",
                                     _get("C2PA_CERT_NAME") or ""),
            c2pa_keyvault_url=_get("C2PA_KEYVAULT_URL") or None,
            c2pa_cert_name=_get("C2PA_CERT_NAME") or None,
            c2pa_create_certificate=_create_certificate(_get("C2PA_CREATE_CERTIFICATE") or "self-signed"),
            c2pa_tsa_url=_url_or_none("C2PA_TSA_URL"),
            c2pa_include_prompt=_bool("C2PA_INCLUDE_PROMPT"),
            api_key=_api_key(_get("IMAGEGEN_API_KEY")),
        )


MIN_API_KEY_CHARS = 16


def _api_key(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) < MIN_API_KEY_CHARS or value != value.strip():
        # The value itself is a secret: the message shows its length, never the key.
        raise ValueError(f"setting `IMAGEGEN_API_KEY` must be at least {MIN_API_KEY_CHARS} characters without "
                         f"surrounding spaces, got {len(value)} characters")
    return value
