"""DeepCache: reuse the UNet's deep features between denoising steps (an opt-in speed-up).

Adjacent denoising steps change the UNet's deep, low-resolution features very little
(Ma et al., "DeepCache: Accelerating Diffusion Models for Free", CVPR 2024). So every
`interval`-th step runs the whole UNet and keeps what its deep blocks returned; the steps
in between run only the outermost blocks (`conv_in`, the first down block, the last up
block, at full latent resolution) and take the deep blocks' results from that cache.

This changes the image (a little, more as `interval` grows), so it is never on unless a
job asks for it (`speedups.deepcache`, see docs/jobs.md). Each image is still a function
of its own seed alone: nothing is shared between the images of a batch.

Works on any `UNet2DConditionModel` (SD 1.x, 2.x, SDXL): the deep blocks' `forward` is
swapped for one that returns the cached result on the in-between steps, so the UNet's
own forward, with all its options, stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch

from imagegen.core.types import MAX_DEEPCACHE as MAX_INTERVAL


def deep_blocks(unet: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks a cached step skips: everything between the first down block and the
    last up block. The last up block reads only the residuals of `conv_in` and the first
    down block, which a cached step computes afresh."""
    # A diffusers UNet2DConditionModel; torch types its submodules as `Tensor | Module`.
    down_blocks = cast(torch.nn.ModuleList, unet.down_blocks)
    up_blocks = cast(torch.nn.ModuleList, unet.up_blocks)
    mid_block = cast("torch.nn.Module | None", unet.mid_block)
    blocks = [*down_blocks[1:], *up_blocks[:-1]]
    if mid_block is not None:
        blocks.append(mid_block)
    return blocks


@contextmanager
def deepcache(unet: torch.nn.Module, interval: int) -> Iterator[dict[str, int]]:
    """Within the block, `unet` runs whole on calls 0, interval, 2*interval, ... and reuses
    its deep blocks' results on the others. One UNet call is one denoising step (the
    diffusers pipelines batch the guided and unguided halves into one call), so use it
    around exactly one pipeline call. `interval` 1 changes nothing.

    Yields counters, `full` and `cached` calls, for logs and tests.
    """
    if not isinstance(interval, int) or not 1 <= interval <= MAX_INTERVAL:
        raise ValueError(f"`deepcache` must be a whole number from 1 (off) to {MAX_INTERVAL}, got {interval!r}")
    counts = {"full": 0, "cached": 0}
    if interval == 1:
        yield counts
        return
    unet = getattr(unet, "_orig_mod", unet)  # the module under a torch.compile wrapper
    blocks = deep_blocks(unet)
    cache: dict[int, Any] = {}
    reuse = False

    def count_step(_module: torch.nn.Module, _args: Any) -> None:
        nonlocal reuse
        step = counts["full"] + counts["cached"]
        reuse = step % interval != 0  # call 0 is always whole, so the cache is filled
        counts["cached" if reuse else "full"] += 1

    def caching(index: int, forward: Any) -> Any:
        def cached_forward(*args: Any, **kwargs: Any) -> Any:
            if reuse:
                return cache[index]
            cache[index] = result = forward(*args, **kwargs)
            return result

        return cached_forward

    hook = unet.register_forward_pre_hook(count_step)
    for index, block in enumerate(blocks):
        block.forward = caching(index, block.forward)  # an instance attribute over the class's
    try:
        yield counts
    finally:
        hook.remove()
        for block in blocks:
            del block.forward  # back to the class's forward
        cache.clear()
