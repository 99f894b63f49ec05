"""Tiny LoRA adapters made at test time with PEFT on the tiny models: random, but non-zero
`lora_B` (PEFT starts it at zero, which would change nothing), saved with diffusers."""

from __future__ import annotations

import io
from pathlib import Path

import torch

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def lora_state_dict(denoiser: torch.nn.Module, *, seed: int = 0, rank: int = 4,
                    scale: float = 0.5) -> dict[str, torch.Tensor]:
    """A LoRA of `denoiser` (a UNet or transformer) in diffusers' saving format, with random
    weights from `seed`; the denoiser itself is left as it was."""
    from peft import LoraConfig, get_peft_model_state_dict
    from peft.tuners.tuners_utils import BaseTunerLayer

    config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=TARGETS)
    denoiser.add_adapter(config, adapter_name="made")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in denoiser.modules():
            if isinstance(module, BaseTunerLayer):
                for name in ("lora_A", "lora_B"):
                    layer = getattr(module, name)["made"]
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * scale)
    state = {key: value.clone() for key, value in get_peft_model_state_dict(denoiser, adapter_name="made").items()}
    denoiser.delete_adapters("made")
    return state


def save_sd_lora(folder: Path, name: str, *, seed: int = 0, unet: torch.nn.Module | None = None) -> Path:
    """`folder/name.safetensors`: a LoRA of the tiny SD model's UNet (or of `unet`)."""
    from diffusers import StableDiffusionPipeline

    from imagegen.generation.tiny_model import build_tiny_pipeline

    unet = unet if unet is not None else build_tiny_pipeline().unet
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=lora_state_dict(unet, seed=seed),
                                              weight_name=f"{name}.safetensors")
    return folder / f"{name}.safetensors"


def save_sdxl_lora(folder: Path, name: str, *, seed: int = 0) -> Path:
    """`folder/name.safetensors`: a LoRA of tiny SDXL's UNet (64-wide cross-attention)."""
    from diffusers import StableDiffusionXLPipeline

    from tests.imagegen.tiny_families import tiny_sdxl_pipeline

    unet = tiny_sdxl_pipeline().unet
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=lora_state_dict(unet, seed=seed),
                                                weight_name=f"{name}.safetensors")
    return folder / f"{name}.safetensors"


def safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors) if tensors else io.BytesIO().getvalue()
