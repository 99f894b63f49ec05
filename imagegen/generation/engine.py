"""The diffusion engine: one loaded model per process, txt2img and img2img over diffusers.

`Services.engine()` (imagegen.service.services) keeps the process's engine for a model; `DiffusionEngine.generate(batch)`
makes a whole batch in one pipeline call. Every image gets its own `torch.Generator`
seeded with its variant's seed, so an image is reproducible from its seed alone: a batch
of four equals the same four made one by one.

The model is a hub id, a local folder, or `tiny`, the offline random test model of
`imagegen.generation.tiny_model` (its images are noise). Its family (imagegen.generation.
families: SD 1.x/2.x, SDXL, SD 3/3.5, FLUX.1) picks the pipeline classes, the arguments a
call takes (negative prompts, the T5 sequence length), the samplers and the speed-ups that
fit; the image-to-image pipeline is made `from_pipe` so both share one copy of the weights.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import PIL.Image
import torch
from diffusers import AutoencoderTiny, DiffusionPipeline
from transformers import AutoTokenizer

from imagegen.core.limits import AUTO_MAX_BATCH
from imagegen.core.settings import Settings
from imagegen.core.types import AdapterUse, Batch, Variant
from imagegen.generation import tiny_model
from imagegen.generation.deepcache import MAX_INTERVAL, deepcache
from imagegen.generation.delivery import deliver, generation_size, native_side
from imagegen.generation.families import Family, ModelFacts, read_model_facts
from imagegen.generation.loading import image2image_of, inpaint_of, load_pipeline, loaded_config_sha256, place
from imagegen.generation.placement import pick_precision
from imagegen.generation.prompt_limits import distinct_limits
from imagegen.generation.prompt_limits import prompt_warnings as encoder_warnings
from imagegen.generation.schedulers import make_scheduler
from imagegen.jobs.variants import call_groups

log = logging.getLogger(__name__)

# Images per call when IMAGEGEN_MAX_BATCH=auto and there is no CUDA GPU to measure.
CPU_MAX_BATCH = 4
# Largest automatic batch on CUDA: what the orchestration hands one activity.
CUDA_MAX_AUTO_BATCH = AUTO_MAX_BATCH
# Peak GPU memory one extra image costs, per output pixel, in the 16-bit SD/SDXL
# pipelines: the VAE decoder's activations, 1536 bytes per pixel in bf16 (384 MiB at
# 512x512, 1.5 GiB at 1024x1024), counted on fake tensors by
# `bench/gpu_throughput.py --flops-only`. They dominate: a guided SD 1.5 UNet step at
# 512x512 peaks at 130 MiB of activations per image, and the two never overlap. The 20%
# headroom in max_batch_size is for the allocator and kernel workspaces, which the count
# leaves out; check it against the harness's peak memory on a GPU.
CUDA_BYTES_PER_PIXEL = 1536
# torch.compile mode for the UNet and VAE decoder. CUDA graphs ("reduce-overhead",
# "max-autotune") are recorded per thread and the Functions host runs activities on
# worker threads, so the default keeps autotuned kernels without CUDA graphs.
COMPILE_MODE = "max-autotune-no-cudagraphs"


@dataclass
class GeneratedImage:
    variant_id: str
    image: PIL.Image.Image  # exactly the variant's width x height
    seconds: float  # this image's share of its pipeline call's wall time
    generated_size: tuple[int, int] | None = None  # what the model made, when `fit` changed it


# --- device and precision --------------------------------------------------------------


def pick_device(setting: str = "auto") -> torch.device:
    """CUDA, else Apple MPS, else CPU; `IMAGEGEN_DEVICE` may force one."""
    if setting not in ("auto", "cuda", "mps", "cpu"):
        raise ValueError(f"setting `IMAGEGEN_DEVICE` must be auto, cuda, mps or cpu, got {setting!r}")
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("setting `IMAGEGEN_DEVICE` is `cuda` but torch sees no CUDA GPU")
    if setting == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("setting `IMAGEGEN_DEVICE` is `mps` but torch sees no MPS device")
    return torch.device(setting)


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that compute it natively (no fp16 overflow in the VAE), fp16 on older
    ones (a T4 has bf16 only by emulation), fp32 on CPU: imagegen.generation.placement decides."""
    native_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return getattr(torch, pick_precision(device.type, native_bf16))


def denoiser_name(pipe: DiffusionPipeline) -> str:
    """`unet` (SD 1.x, 2.x, XL) or `transformer` (SD 3, FLUX.1): the pipeline's denoising model."""
    return "unet" if getattr(pipe, "unet", None) is not None else "transformer"


def optimize_for_cuda(pipe: DiffusionPipeline, *, compile_mode: str | None = COMPILE_MODE) -> None:
    """The CUDA speed-ups that leave a seed's image unchanged (beyond 16-bit noise).

    The one place for them: the engine and bench/gpu_throughput.py both call this.
    channels_last convolutions, fused QKV projections (one matmul instead of three),
    and `torch.compile` of the UNet and the VAE decoder with static shapes (compiled on
    the first call at each image size and batch size, then reused by the process).
    Nothing here changes steps, the scheduler or the VAE. Does nothing off CUDA, or for an
    offloaded pipeline (its weights move in and out of the GPU: nothing to compile in place).
    The denoiser is the UNet, or the transformer of SD 3 and FLUX.1.
    """
    if pipe.device.type != "cuda":
        return
    name = denoiser_name(pipe)
    denoiser = getattr(pipe, name)
    denoiser.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    if hasattr(pipe, "fuse_qkv_projections"):
        pipe.fuse_qkv_projections()  # keeps PyTorch SDPA attention, with fused processors
    elif hasattr(denoiser, "fuse_qkv_projections"):
        denoiser.fuse_qkv_projections()
    if compile_mode:
        # Every (batch, size) is a separate static graph: allow enough of them.
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        setattr(pipe, name, torch.compile(denoiser, mode=compile_mode, fullgraph=True, dynamic=False))
        pipe.vae.decode = torch.compile(pipe.vae.decode, mode=compile_mode, fullgraph=True, dynamic=False)


@contextmanager
def speedups(pipe: DiffusionPipeline, *, deepcache_interval: int = 1,
             tiny_vae: AutoencoderTiny | None = None) -> Iterator[DiffusionPipeline]:
    """The speed-ups that DO change the image, on `pipe` for one call, undone afterwards.

    The one place for them (a job's `speedups`; bench/gpu_throughput.py calls this too):
    DeepCache every `deepcache_interval` steps (1: off; UNet models only), and decoding
    with a tiny VAE (TAESD, TAESDXL, TAESD3, TAEF1) instead of the model's own. Neither is
    ever on unless a job asks.
    """
    unet, vae = getattr(pipe, "unet", None), pipe.vae
    if deepcache_interval > 1 and unet is None:
        raise ValueError(f"`deepcache` needs a UNet and this {type(pipe).__name__} has a transformer, "
                         f"got {deepcache_interval}")
    try:
        if tiny_vae is not None:
            pipe.vae = tiny_vae
        if unet is None:
            yield pipe
            return
        if deepcache_interval > 1:
            # DeepCache swaps the deep blocks' forward between steps; a compiled graph
            # would not see the swap, so the call runs the module under the compiler.
            pipe.unet = getattr(unet, "_orig_mod", unet)
        with deepcache(pipe.unet, deepcache_interval):
            yield pipe
    finally:
        pipe.vae = vae
        if unet is not None:
            pipe.unet = unet


@contextmanager
def lora_adapters(pipe: DiffusionPipeline, uses: tuple[AdapterUse, ...],
                  files: Mapping[str, bytes]) -> Iterator[DiffusionPipeline]:
    """`pipe` with the LoRA adapters `uses` (their safetensors bytes in `files`, by name)
    applied at their weights for one call, and removed afterwards: the base model's own
    weights are never changed (PEFT adds the LoRA layers beside them), so after the call
    the pipeline makes exactly what it made before, without reloading anything.

    Fused QKV projections (optimize_for_cuda) would bypass a LoRA on `to_q`, `to_k` and
    `to_v`: they are unfused for the call and fused again after.
    """
    if not uses:
        yield pipe
        return
    from safetensors.torch import load as load_safetensors

    denoiser = getattr(pipe, denoiser_name(pipe))
    denoiser = getattr(denoiser, "_orig_mod", denoiser)
    fused = any(getattr(module, "fused_projections", False) for module in denoiser.modules())
    names = [f"adapter{number}" for number in range(len(uses))]  # a job's names may hold '.', PEFT's may not
    try:
        if fused:
            _fuse(pipe, denoiser, fuse=False)
        for name, use in zip(names, uses):
            try:
                pipe.load_lora_weights(load_safetensors(files[use.name]), adapter_name=name)
            except (RuntimeError, ValueError, KeyError) as error:  # passed the header checks, yet does not fit
                raise ValueError(f"adapter {use.name!r} does not fit model {type(pipe).__name__}'s weights: "
                                 f"{str(error).splitlines()[0][:300] if str(error) else type(error).__name__}") from error
        pipe.set_adapters(names, adapter_weights=[use.weight for use in uses])
        yield pipe
    finally:
        pipe.unload_lora_weights()  # also what a load that failed half way added
        if fused:
            _fuse(pipe, denoiser, fuse=True)


def _fuse(pipe: DiffusionPipeline, denoiser: Any, *, fuse: bool) -> None:
    verb = "fuse_qkv_projections" if fuse else "unfuse_qkv_projections"
    if hasattr(pipe, verb):
        getattr(pipe, verb)()
    elif hasattr(denoiser, verb):
        getattr(denoiser, verb)()


# --- loading ---------------------------------------------------------------------------


def load_text2image(model: str, revision: str | None, device: torch.device, dtype: torch.dtype,
                    compile_mode: str | None = None,
                    facts: ModelFacts | None = None) -> tuple[DiffusionPipeline, str]:
    """The text-to-image pipeline of `model`'s family, on `device` in `dtype` (offloaded when
    it does not fit a GPU), speed-ups applied; and where its weights are (`place`)."""
    facts = facts or read_model_facts(model, revision)
    pipe = load_pipeline(model, revision, facts, dtype)
    placement = place(pipe, device, model)
    pipe.set_progress_bar_config(disable=True)
    optimize_for_cuda(pipe, compile_mode=compile_mode)
    return pipe, placement


# --- the engine ------------------------------------------------------------------------


class DiffusionEngine:
    """One model on one device; generates batches. Thread-safe; kept per process by `Services.engine()`.

    `tiny_vae`: the tiny VAE (a folder or hub id) for jobs with `speedups.tiny_vae`; None:
    `IMAGEGEN_TINY_VAE`, and for the `tiny` model its own."""

    def __init__(self, model: str, revision: str | None = None, *, settings: Settings,
                 tiny_vae: str | None = None):
        self.settings = settings
        self.model = model
        if model == tiny_model.TINY_MODEL_ID:
            if revision not in (None, tiny_model.TINY_REVISION):
                raise ValueError(
                    f"`revision` of model `tiny` must be {tiny_model.TINY_REVISION!r}, got {revision!r}"
                )
            revision = tiny_model.TINY_REVISION
        self.revision = revision
        self.tiny_vae_source = tiny_vae if tiny_vae is not None else settings.tiny_vae
        self.device = pick_device(self.settings.device)
        self.dtype = pick_dtype(self.device)
        self._load_lock = threading.Lock()
        # Schedulers are swapped on the shared pipeline and are stateful: one call at a time.
        self._generate_lock = threading.Lock()
        self._text2image: DiffusionPipeline | None = None
        self._image2image: DiffusionPipeline | None = None
        self._inpaint: DiffusionPipeline | None = None  # made on the first masked batch (inpaint_pipeline)
        self._tiny_vae: AutoencoderTiny | None = None  # loaded when a job first asks
        # A compiled UNet is static-shape: each new batch size compiles (minutes with
        # max-autotune). Padding calls to a power of two keeps that to a handful of sizes.
        self.pad_batches = self.device.type == "cuda" and self.settings.compile_mode is not None
        self._scheduler_config: Any = None
        self._facts: ModelFacts | None = None  # read from the model's files, without its weights
        self._tokenizers: dict[str, Any] = {}  # likewise, see tokenizers()
        self.placement: str | None = None  # where the weights are once loaded (loading.place)
        self.config_sha256: str | None = None  # the model's config hash, once loaded

    @property
    def facts(self) -> ModelFacts:
        """The model's family and flavour (imagegen.generation.families), read once from its files."""
        if self._facts is None:
            with self._load_lock:
                if self._facts is None:
                    self._facts = read_model_facts(self.model, self.revision)
        return self._facts

    @property
    def family(self) -> Family:
        return self.facts.family

    @property
    def loaded(self) -> bool:
        return self._text2image is not None

    def load(self) -> DiffusionPipeline:
        """Load the model once; threads asking at the same time wait for the one load."""
        facts = self.facts
        with self._load_lock:
            if self._text2image is None:
                set_torch_threads(self.settings.torch_threads, self.device)
                started = time.perf_counter()
                pipe, self.placement = load_text2image(self.model, self.revision, self.device, self.dtype,
                                                       compile_mode=self.settings.compile_mode, facts=facts)
                self._scheduler_config = pipe.scheduler.config
                self.config_sha256 = loaded_config_sha256(self.model, pipe, facts)
                self._image2image = image2image_of(pipe, facts)
                self._text2image = pipe
                log.info(
                    "loaded model %s (revision %s, %s %s) on %s (%s) as %s in %.1f s",
                    self.model, self.revision, facts.family.title, facts.flavour, self.device, self.placement,
                    str(self.dtype).removeprefix("torch."), time.perf_counter() - started,
                )
            return self._text2image

    def unload(self) -> None:
        """Let go of the weights (Services keeps few models loaded); waits for a running call.
        The next `generate` loads them again."""
        with self._generate_lock, self._load_lock:
            if self._text2image is None:
                return
            self._text2image = self._image2image = self._inpaint = None
            self._tiny_vae = None
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            log.info("unloaded model %s (revision %s)", self.model, self.revision)

    def inpaint_pipeline(self) -> DiffusionPipeline:
        """The family's inpainting pipeline over the loaded weights, made `from_pipe` on the
        first masked batch (no reload, no second copy of the weights)."""
        self.load()
        with self._load_lock:
            if self._inpaint is None:
                assert self._text2image is not None  # loaded just now; unload waits for generate
                self._inpaint = inpaint_of(self._text2image, self.facts)
            return self._inpaint

    def _pipeline(self, img2img: bool, inpaint: bool) -> DiffusionPipeline:
        if inpaint:
            return self.inpaint_pipeline()
        self.load()  # Services may have unloaded it since generate() loaded it
        pipe = self._image2image if img2img else self._text2image
        assert pipe is not None  # loaded just now
        return pipe

    def load_tiny_vae(self) -> AutoencoderTiny:
        """The tiny VAE for `speedups.tiny_vae`: the engine's `tiny_vae` (TAESD, TAESDXL,
        TAESD3 or TAEF1: it must decode this family's latents), or the tiny model's own.
        Loaded once, on the first job that asks."""
        family = self.family
        with self._load_lock:
            if self._tiny_vae is None:
                if self.model == tiny_model.TINY_MODEL_ID:
                    vae = tiny_model.build_tiny_autoencoder()  # built in fp32
                    if self.dtype != torch.float32:
                        vae.to(dtype=self.dtype)
                elif self.tiny_vae_source:
                    vae = AutoencoderTiny.from_pretrained(self.tiny_vae_source, dtype=self.dtype)
                else:
                    raise ValueError(f"`speedups.tiny_vae` needs a tiny VAE for model {self.model!r} "
                                     f"({family.title}: {family.tiny_vae}), and it has none: set "
                                     "`IMAGEGEN_TINY_VAE`, or `tiny_vae` in its `IMAGEGEN_MODELS` catalog entry")
                if vae.config.latent_channels != family.latent_channels:
                    raise ValueError(
                        f"tiny VAE {self.tiny_vae_source!r} decodes {vae.config.latent_channels}-channel latents "
                        f"and {family.title} makes {family.latent_channels}: use {family.tiny_vae}")
                self._tiny_vae = vae.to(self.device)
                log.info("loaded tiny VAE %s", self.tiny_vae_source or "(tiny model's)")
            return self._tiny_vae

    def generate(self, batch: Batch, source_image: PIL.Image.Image | None = None,
                 cancelled: Callable[[], bool] | None = None,
                 mask_image: PIL.Image.Image | None = None,
                 adapters: Mapping[str, bytes] | None = None) -> list[GeneratedImage]:
        """Make every variant of `batch`, in order; img2img when its variants have a source,
        inpainting when they have a mask too (`mask_image`: white repaints, black keeps).
        `adapters`: the safetensors bytes of the LoRA adapters its variants name, by name
        (applied per call and removed after, `lora_adapters`).

        Variants that share size, steps, scheduler, guidance, strength and speed-ups go
        in one pipeline call (the normal case: `spec.batches` groups them that way).
        `cancelled` is asked between diffusion steps: when it says yes, the call stops
        with `GenerationCancelled` and makes no image.
        """
        # 1. Check inputs before any heavy work.
        check_batch(batch, source_image, self.family, mask_image)
        missing = sorted({use.name for v in batch.variants for use in v.adapters} - set(adapters or {}))
        if missing:
            raise ValueError(f"batch `{batch.id}`: adapter {missing[0]!r} is used and its file was not given")
        self.load()
        results: dict[str, GeneratedImage] = {}
        # 2. One pipeline call per group of variants that share the call's settings.
        for group in call_groups(batch.variants):
            for image in self._generate_group(group, source_image, cancelled, mask_image, adapters or {}):
                results[image.variant_id] = image
        return [results[variant.id] for variant in batch.variants]

    def _generate_group(self, variants: list[Variant], source_image: PIL.Image.Image | None,
                        cancelled: Callable[[], bool] | None = None,
                        mask_image: PIL.Image.Image | None = None,
                        adapters: Mapping[str, bytes] | None = None) -> list[GeneratedImage]:
        first = variants[0]
        img2img = first.image is not None
        inpaint = img2img and first.mask is not None
        tiny_vae = self.load_tiny_vae() if first.tiny_vae else None
        # 3. Pad a compiled engine's call to a size it has compiled, with copies of the last
        #    variant whose images are thrown away (each image depends on its own seed only).
        calls = list(variants)
        if self.pad_batches:
            calls += [variants[-1]] * (self.padded_size(first, len(variants)) - len(variants))
        # 4. One generator per image, seeded with that image's seed (reproducible alone).
        generators = [torch.Generator(device=self._generator_device()).manual_seed(v.seed) for v in calls]
        arguments: dict[str, Any] = dict(
            prompt=[v.prompt for v in calls],
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            generator=generators,
            output_type="pil",
            **self.family_arguments(calls),
        )
        if cancelled is not None:
            arguments["callback_on_step_end"] = stop_when(cancelled)
        # 5. The size the model makes the images at: the one asked when the model draws it
        #    well, else the nearest it does (imagegen.generation.delivery).
        pipe = self._pipeline(img2img, inpaint)
        width, height = generation_size(first.width, first.height, native_side(pipe), self.family.size_multiple)
        mask = None
        if img2img:
            # 5a. img2img: the source at that size, the same for each image.
            assert source_image is not None  # check_batch: img2img variants come with their source
            source = source_image.convert("RGB").resize((width, height), PIL.Image.Resampling.LANCZOS)
            arguments.update(image=[source] * len(calls), strength=first.strength)
            if inpaint:
                # 5a'. inpainting: the mask at that size too (white repaints, black keeps); every
                #      family's inpainting pipeline takes the size.
                assert mask_image is not None  # check_batch: masked variants come with their mask
                mask = mask_image.convert("L").resize((width, height), PIL.Image.Resampling.LANCZOS)
                arguments.update(mask_image=[mask] * len(calls), width=width, height=height)
            elif self.family.flow_matching:
                # SD 3's and FLUX's img2img take a size too, and FLUX's defaults to 1024 px
                # rather than the source's.
                arguments.update(width=first.width, height=first.height)
        else:
            # 5b. txt2img: the size comes from the arguments.
            arguments.update(width=width, height=height)
        # 6. Run the pipeline with a fresh scheduler and the job's speed-ups, one call at a time.
        with self._generate_lock:
            pipe = self._pipeline(img2img, inpaint)  # again: Services may have unloaded it since
            pipe.scheduler = make_scheduler(first.scheduler, self._scheduler_config,
                                            flow_matching=self.family.flow_matching)
            started = time.perf_counter()
            with lora_adapters(pipe, first.adapters, adapters or {}), \
                    speedups(pipe, deepcache_interval=first.deepcache, tiny_vae=tiny_vae), torch.inference_mode():
                images = pipe(**arguments).images[: len(variants)]
            seconds = (time.perf_counter() - started) / len(variants)
        if mask is not None:
            # 6a. What the mask keeps is the source's own pixels, not their round trip through
            #     the VAE (which shifts colours and softens detail): pasted back through the mask.
            images = [PIL.Image.composite(image.convert("RGB"), source, mask) for image in images]
        # 7. Each image exactly the size asked, by the job's `fit`.
        made = None if (width, height) == (first.width, first.height) else (width, height)
        return [GeneratedImage(variant_id=v.id, image=deliver(image, v.width, v.height, v.fit, v.pad_color),
                               seconds=seconds, generated_size=made) for v, image in zip(variants, images)]

    def family_arguments(self, calls: list[Variant]) -> dict[str, Any]:
        """What a call takes beyond the common arguments, by family: negative prompts where
        the family has classifier-free guidance, and T5's sequence length where it has T5."""
        arguments: dict[str, Any] = {}
        if self.family.negatives:
            # Always a list, even of empty strings: SDXL zeroes a missing negative but
            # encodes "" otherwise, and an image must not depend on its batch-mates.
            arguments["negative_prompt"] = [v.negative for v in calls]
        t5 = next((encoder for encoder in self.facts.text_encoders if encoder.kind == "T5"), None)
        if t5 is not None:
            arguments["max_sequence_length"] = t5.max_tokens
        return arguments

    def _generator_device(self) -> str:
        # MPS generators are unreliable; diffusers draws on the CPU and moves the noise.
        return "cuda" if self.device.type == "cuda" else "cpu"

    def tokenizers(self) -> dict[str, Any]:
        """The model's tokenizers by folder (`tokenizer`, `tokenizer_2`, ...), without loading
        the model when it is not loaded: an HTTP process checks prompts without a GPU or
        gigabytes of weights."""
        encoders = distinct_limits(self.facts.text_encoders)
        pipe = self._text2image
        if pipe is not None:
            return {encoder.tokenizer: getattr(pipe, encoder.tokenizer) for encoder in encoders}
        with self._load_lock:
            for encoder in encoders:
                if encoder.tokenizer not in self._tokenizers:
                    if self.model == tiny_model.TINY_MODEL_ID:
                        self._tokenizers[encoder.tokenizer] = tiny_model.build_tokenizer()
                    else:
                        self._tokenizers[encoder.tokenizer] = AutoTokenizer.from_pretrained(
                            self.model, subfolder=encoder.tokenizer, revision=self.revision)
            return dict(self._tokenizers)

    def prompt_warnings(self, texts: list[str], names: list[str] | None = None) -> list[str]:
        """A warning for each text one of the model's text encoders cuts (CLIP at 77 tokens,
        T5 at 256 or 512), counted with that encoder's tokenizer, naming it by `names`
        (default: "prompt N", counted from 1)."""
        tokenizers = self.tokenizers()
        names = names or [f"prompt {number}" for number in range(1, len(texts) + 1)]
        encoders = [(encoder, tokenizers[encoder.tokenizer]) for encoder in distinct_limits(self.facts.text_encoders)]
        return encoder_warnings(texts, names, encoders)

    def describe(self) -> dict:
        """What the health endpoint shows: model, family, device, precision, GPU, loaded or not."""
        gpu_name = gpu_memory_gb = None
        if self.device.type == "cuda":
            index = self.device.index or 0
            gpu_name = torch.cuda.get_device_name(index)
            gpu_memory_gb = round(torch.cuda.get_device_properties(index).total_memory / 2**30, 1)
        description = {
            "model": self.model,
            "revision": self.revision,
            "device": self.device.type,
            "dtype": str(self.dtype).removeprefix("torch."),
            "gpu_name": gpu_name,
            "gpu_memory_gb": gpu_memory_gb,
            "loaded": self.loaded,
        }
        if self._facts is not None:
            description["family"] = self._facts.name
        if self.placement is not None:
            description["placement"] = self.placement
        if self.model == tiny_model.TINY_MODEL_ID:
            description["note"] = "tiny offline test model with random weights: its images are noise"
        return description

    def peak_memory_bytes(self) -> int | None:
        """Peak GPU memory since the last ask (None off CUDA), for the `imagegen.gpu.memory` metric."""
        if self.device.type != "cuda":
            return None
        peak = torch.cuda.max_memory_allocated(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return int(peak)

    def padded_size(self, variant: Variant, count: int) -> int:
        """`count` images rounded up to a power of two, but never past the most a call of
        this size may hold (then to that most, which is what full batches use anyway)."""
        most = max(count, self.max_batch_size(variant.width, variant.height))
        return min(1 << (count - 1).bit_length(), most)

    def max_batch_size(self, width: int, height: int) -> int:
        """Images per pipeline call: `IMAGEGEN_MAX_BATCH`, or from free GPU memory when auto."""
        if self.settings.max_batch_images is not None:
            return self.settings.max_batch_images
        if self.device.type != "cuda":
            return CPU_MAX_BATCH
        free_bytes, _total = torch.cuda.mem_get_info(self.device)
        per_image = CUDA_BYTES_PER_PIXEL * width * height
        return max(1, min(CUDA_MAX_AUTO_BATCH, int(free_bytes * 0.8) // per_image))


def set_torch_threads(setting: str, device: torch.device) -> None:
    """torch's CPU threads for the host: on a CPU device one per core but one, so the image
    checks, storage and the host run beside the diffusion model instead of stalling its
    threads (which wait for each other at every op); on a GPU torch's default."""
    if setting == "auto":
        if device.type != "cpu":
            return
        threads = max(1, (os.cpu_count() or 1) - 1)
    elif setting.isdigit() and int(setting) >= 1:
        threads = int(setting)
    else:
        raise ValueError(f"setting `IMAGEGEN_TORCH_THREADS` must be `auto` or a whole number >= 1, got {setting!r}")
    torch.set_num_threads(threads)


def check_batch(batch: Batch, source_image: PIL.Image.Image | None, family: Family | None = None,
                mask_image: PIL.Image.Image | None = None) -> None:
    """Raise ValueError naming the variant and field when a batch cannot be generated (by a
    model of `family`; the submit-time checks, imagegen.generation.model_fit, say the same
    to the user first)."""
    for variant in batch.variants:
        where = f"batch `{batch.id}` variant `{variant.id}`"
        if family is not None and variant.negative and not family.negatives:
            raise ValueError(f"{where}: `negative` is not used by {family.title} models (no classifier-free "
                             f"guidance), got {variant.negative!r}")
        if family is not None and variant.deepcache > 1 and family.denoiser != "unet":
            raise ValueError(f"{where}: `deepcache` needs a UNet and {family.title} models have a transformer, "
                             f"got {variant.deepcache}")
        if variant.image is not None and source_image is None:
            raise ValueError(f"{where}: `image` is {variant.image!r} but no source image was given")
        if variant.mask is not None and variant.image is None:
            raise ValueError(f"{where}: `mask` is {variant.mask!r} but the variant has no source `image`")
        if variant.mask is not None and mask_image is None:
            raise ValueError(f"{where}: `mask` is {variant.mask!r} but no mask image was given")
        if variant.image is not None and not (variant.strength is not None and 0 < variant.strength <= 1):
            raise ValueError(f"{where}: `strength` must be in (0, 1] for img2img, got {variant.strength!r}")
        if not 1 <= variant.deepcache <= MAX_INTERVAL:
            raise ValueError(f"{where}: `deepcache` must be from 1 (off) to {MAX_INTERVAL}, got {variant.deepcache!r}")
    if source_image is not None and len({v.image for v in batch.variants}) > 1:
        raise ValueError(f"batch `{batch.id}`: all variants must share one source `image`, got several")
    if mask_image is not None and len({v.mask for v in batch.variants}) > 1:
        raise ValueError(f"batch `{batch.id}`: all variants must share one `mask`, got several")


class GenerationCancelled(Exception):
    """The job was cancelled while its images were being made."""


def stop_when(cancelled: Callable[[], bool], every_seconds: float = 1.0):
    """A diffusers `callback_on_step_end` that stops the call once `cancelled()` says yes.

    Asked at most once a second: a step can be far shorter than a storage round trip.
    """
    asked = [time.monotonic()]

    def callback(pipe, step: int, timestep, callback_kwargs: dict) -> dict:
        now = time.monotonic()
        if now - asked[0] >= every_seconds:
            asked[0] = now
            if cancelled():
                raise GenerationCancelled(f"cancelled at step {step}")
        return callback_kwargs

    return callback

