"""Loading a model: its family's pipeline classes, on the device, its weights placed to fit.

`load_text2image` reads the pipeline class from the model's family (imagegen.generation.
families: `StableDiffusion3Pipeline` for SD 3, `FluxPipeline` for FLUX.1, ...), loads it in
the engine's precision and places it (imagegen.generation.placement: all on the GPU, or
offloaded when it does not fit); `image2image_of` makes the family's image-to-image
pipeline over the same weights.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import diffusers
import torch
from diffusers import DiffusionPipeline

from imagegen.generation import tiny_model
from imagegen.generation.families import ModelFacts, config_digest
from imagegen.generation.placement import Placement, pick_placement

log = logging.getLogger(__name__)


def load_pipeline(model: str, revision: str | None, facts: ModelFacts, dtype: torch.dtype) -> DiffusionPipeline:
    """The family's text-to-image pipeline for `model`, on the CPU in `dtype`."""
    if model == tiny_model.TINY_MODEL_ID:
        warn_tiny()
        pipe = tiny_model.build_tiny_pipeline()  # built in fp32
        if dtype != torch.float32:
            pipe.to(dtype=dtype)
        return pipe
    options: dict[str, Any] = {}
    if "safety_checker" in DiffusionPipeline.load_config(model, revision=revision):
        # Moderation is ours (imagegen.checks.safety) and runs on every output; SD's own
        # checker would black out images before we could quarantine them.
        options = {"safety_checker": None, "requires_safety_checker": False}
    pipeline_class = getattr(diffusers, facts.family.text2image)
    return pipeline_class.from_pretrained(model, revision=revision, dtype=dtype, **options)


def image2image_of(pipe: DiffusionPipeline, facts: ModelFacts) -> DiffusionPipeline:
    """The family's image-to-image pipeline over the same components (no second copy)."""
    pipeline_class = getattr(diffusers, facts.family.image2image)
    image2image = pipeline_class.from_pipe(pipe)
    image2image.set_progress_bar_config(disable=True)
    return image2image


def inpaint_of(pipe: DiffusionPipeline, facts: ModelFacts) -> DiffusionPipeline:
    """The family's inpainting pipeline over the same components (no second copy). A text-to-
    image model's 4-channel denoiser inpaints by blending the source's noised latents outside
    the mask at every step (diffusers' own path for it); a dedicated 9-channel inpainting
    model is a model of its own (`IMAGEGEN_MODELS`)."""
    pipeline_class = getattr(diffusers, facts.family.inpaint)
    inpaint = pipeline_class.from_pipe(pipe)
    inpaint.set_progress_bar_config(disable=True)
    return inpaint


def component_bytes(pipe: DiffusionPipeline) -> dict[str, int]:
    """The bytes of each component's weights, as loaded (in the engine's precision)."""
    sizes = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            sizes[name] = sum(p.numel() * p.element_size() for p in component.parameters())
    return sizes


def place(pipe: DiffusionPipeline, device: torch.device, model: str) -> str:
    """Move the pipeline to `device`; on CUDA, offload it when free memory says so. Returns
    where its weights are: `cpu`, `mps`, or a `Placement` on CUDA."""
    if device.type != "cuda":
        pipe.to(device)
        return device.type
    free_bytes, _total = torch.cuda.mem_get_info(device)
    sizes = component_bytes(pipe)
    placement: Placement = pick_placement(free_bytes, sizes)
    if placement == "gpu":
        pipe.to(device)
        return placement
    if importlib.util.find_spec("accelerate") is None:
        raise RuntimeError(
            f"model {model!r} needs {sum(sizes.values()) / 2**30:.1f} GiB of weights and the GPU has "
            f"{free_bytes / 2**30:.1f} GiB free: it runs only offloaded ({placement}), which needs the "
            "`accelerate` package; install it or use a larger GPU")
    log.warning("model %s (%.1f GiB of weights) does not fit in %.1f GiB free GPU memory: %s",
                model, sum(sizes.values()) / 2**30, free_bytes / 2**30, placement)
    if placement == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.enable_sequential_cpu_offload(device=device)
    return placement


def pipeline_configs(pipe: DiffusionPipeline) -> dict[str, dict[str, Any]]:
    """A loaded pipeline's configs, by the paths they would have in its folder."""
    configs: dict[str, dict[str, Any]] = {"model_index.json": dict(pipe.config)}
    for name, component in pipe.components.items():
        config = getattr(component, "config", None)
        if config is not None and hasattr(config, "items"):
            file = "scheduler_config.json" if name == "scheduler" else "config.json"
            configs[f"{name}/{file}"] = dict(config.items()) if not isinstance(config, dict) else dict(config)
    return configs


def loaded_config_sha256(model: str, pipe: DiffusionPipeline, facts: ModelFacts) -> str | None:
    """The model's config hash: from its files (the facts), or for the built-in tiny model,
    which has none, from the pipeline as built."""
    if facts.config_sha256 is not None:
        return facts.config_sha256
    if model == tiny_model.TINY_MODEL_ID:
        return config_digest(pipeline_configs(pipe))
    return None


def warn_tiny() -> None:
    # Once per engine, and engines are kept per process: once per process in the app.
    log.warning(
        "Loading the TINY test model (IMAGEGEN_MODEL=tiny): its weights are random and every "
        "image it makes is NOISE. Set IMAGEGEN_MODEL to a model id or folder for real images."
    )
