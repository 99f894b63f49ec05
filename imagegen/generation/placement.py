"""Where a model's weights live and in what precision: pure decisions over measured numbers.

The engine measures (free GPU memory, the bytes of each component in the chosen precision,
whether the GPU has native bf16) and these functions decide. They are pure so that the
CUDA-only paths are tested on any machine: a T4 (16 GB, no native bf16) and an H100
(80 GB) are just numbers here.

- Precision: bf16 where the GPU computes it natively (no fp16 overflow in the VAE and
  the T5 encoder); fp16 on older GPUs (a T4 "supports" bf16 only by emulation, many times
  slower); fp32 on a CPU.
- Placement: every component on the GPU when the model fits with room to work; else
  `model` offload (diffusers' `enable_model_cpu_offload`: each component moves to the GPU
  while it runs, so the largest one must fit); else `sequential` offload
  (`enable_sequential_cpu_offload`: weights stream in layer by layer, slow but fits anything).
"""

from __future__ import annotations

from typing import Literal

Placement = Literal["gpu", "model_offload", "sequential_offload"]
Precision = Literal["bfloat16", "float16", "float32"]

# Room left on the GPU besides the weights, for activations (the VAE decoder's dominate:
# 1.5 GiB for one 1024x1024 image, imagegen.generation.engine.CUDA_BYTES_PER_PIXEL), the
# allocator and kernel workspaces.
WORKING_BYTES = 3 * 2**30


def pick_precision(device_type: str, native_bf16: bool) -> Precision:
    """bf16 on a GPU that computes it natively, fp16 on one that does not, fp16 on Apple
    MPS, fp32 on a CPU. `native_bf16`: `torch.cuda.is_bf16_supported(including_emulation=False)`."""
    if device_type == "cuda":
        return "bfloat16" if native_bf16 else "float16"
    if device_type == "mps":
        return "float16"
    return "float32"


def pick_placement(free_bytes: int, component_bytes: dict[str, int], working_bytes: int = WORKING_BYTES) -> Placement:
    """Where the weights go, given the GPU's free memory and each component's weights.

    All on the GPU when they fit with `working_bytes` to spare; `model_offload` when the
    largest component does; else `sequential_offload`."""
    total = sum(component_bytes.values())
    largest = max(component_bytes.values(), default=0)
    if total + working_bytes <= free_bytes:
        return "gpu"
    if largest + working_bytes <= free_bytes:
        return "model_offload"
    return "sequential_offload"
