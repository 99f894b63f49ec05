"""Exact delivery sizes: make an image at a size the model is good at, deliver the size asked.

A job may ask for any `WxH` within the limits (1080x1080, 1200x628, 1456x180, ...), and
no model draws well at every size: each family has a native resolution it was trained at
(512 px for SD 1.5, 1024 px for SDXL, SD 3 and FLUX) and a side multiple its latents need
(8, or 16 for the transformer families: `Family.size_multiple`). So the engine:

1. generates at `generation_size`: the asked aspect, each side a multiple of the model's,
   and no more pixels than the model's budget (its native area, with room for the
   family's usual non-square sizes: SD 1.5's 768x512 or SDXL's 1216x832 stay as asked);
2. delivers exactly `WxH` with `deliver`, by the job's `fit`: `cover` (scale to fill,
   centre crop: the default), `contain` (scale to fit, pad with `pad_color`) or `stretch`.

A size the model can make as asked is made as asked, and delivering it changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image, ImageColor

from imagegen.core.types import Fit

# How far past its native area a model is still asked to draw: 1.5x keeps each family's
# common non-square sizes (2:3 and 3:2 at the native width) as asked.
BUDGET_FACTOR = 1.5


def native_side(pipe: Any) -> int:
    """The side, in pixels, the pipeline's model was trained at (its default size)."""
    sample_size = getattr(pipe, "default_sample_size", None)
    if sample_size is None:
        sample_size = pipe.unet.config.sample_size
    return int(sample_size) * int(pipe.vae_scale_factor)


def generation_size(width: int, height: int, native: int, multiple: int) -> tuple[int, int]:
    """The size to generate `width`x`height` at: the same aspect, sides multiples of
    `multiple`, at most `BUDGET_FACTOR` times the native area (never more than asked)."""
    budget = BUDGET_FACTOR * native * native
    scale = min(1.0, math.sqrt(budget / (width * height)))

    def side(value: float) -> int:
        return max(multiple, round(value * scale / multiple) * multiple)

    return side(width), side(height)


def deliver(image: Image.Image, width: int, height: int, fit: Fit = "cover",
            pad_color: str = "#ffffff") -> Image.Image:
    """`image` at exactly `width`x`height` (itself when it already is)."""
    if image.size == (width, height):
        return image
    if fit == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    scale = (max if fit == "cover" else min)(width / image.width, height / image.height)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                          Image.Resampling.LANCZOS)
    if fit == "cover":  # the middle of the scaled image
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        return scaled.crop((left, top, left + width, top + height))
    canvas = Image.new(scaled.mode, (width, height), ImageColor.getcolor(pad_color, scaled.mode))
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
    return canvas
