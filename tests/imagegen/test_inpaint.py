"""Masked edits (inpainting) on the tiny SD 1.x, SDXL, SD 3 and FLUX.1 pipelines, on CPU: 64 px, 2 steps."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from imagegen.core.settings import Settings
from imagegen.generation.engine import DiffusionEngine
from tests.imagegen.test_diffusion import batch, pixels, variant
from tests.imagegen.tiny_families import save_family

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def source_image() -> PIL.Image.Image:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    return PIL.Image.fromarray(noise)


def left_half_mask(color: str = "white") -> PIL.Image.Image:
    """White (repaint) on the left half, black (keep) on the right."""
    mask = PIL.Image.new("L", (64, 64), 0)
    mask.paste(255 if color == "white" else 0, (0, 0, 32, 64))
    return mask


def masked(**changes):
    return variant(seed=4, steps=2, image="inputs/source.png", mask="inputs/mask.png", strength=1.0, **changes)


@pytest.fixture(scope="module")
def engine() -> DiffusionEngine:
    return DiffusionEngine("tiny", settings=Settings(device="cpu"))


def test_the_masked_region_changes_and_the_kept_region_is_the_source(engine):
    source = source_image()
    made = engine.generate(batch(masked()), source_image=source, mask_image=left_half_mask())[0].image
    assert type(engine.inpaint_pipeline()).__name__ == "StableDiffusionInpaintPipeline"
    assert made.size == (64, 64)
    difference = np.abs(pixels(made) - pixels(source))
    assert difference[:, 34:].max() <= 2  # kept: the source's own pixels (LANCZOS edge aside)
    assert difference[:, :30].mean() > 20  # repainted
    # The inpainting pipeline shares the text-to-image pipeline's weights (from_pipe, no reload).
    assert engine.inpaint_pipeline().unet is engine.load().unet


def test_an_all_black_mask_keeps_the_source(engine):
    source = source_image()
    made = engine.generate(batch(masked()), source_image=source,
                           mask_image=PIL.Image.new("L", (64, 64), 0))[0].image
    assert np.abs(pixels(made) - pixels(source)).max() <= 2


def test_a_mask_of_another_size_is_resized_to_the_image(engine):
    source = source_image()
    made = engine.generate(batch(masked(width=64, height=48)), source_image=source,
                           mask_image=PIL.Image.new("RGB", (300, 200), "black"))[0].image
    assert made.size == (64, 48)
    assert np.abs(pixels(made) - pixels(source.resize((64, 48), PIL.Image.Resampling.LANCZOS))).max() <= 2


def test_a_masked_variant_without_its_mask_image_is_refused(engine):
    with pytest.raises(ValueError, match=r"`mask` is 'inputs/mask.png' but no mask image was given"):
        engine.generate(batch(masked()), source_image=source_image())


INPAINT_PIPELINES = {"sdxl": "StableDiffusionXLInpaintPipeline", "sd3": "StableDiffusion3InpaintPipeline",
                     "flux": "FluxInpaintPipeline"}


@pytest.mark.parametrize("family", list(INPAINT_PIPELINES))
def test_each_family_inpaints_with_its_own_pipeline(tmp_path, family):
    engine = DiffusionEngine(str(save_family(family, tmp_path / family)), settings=Settings(device="cpu"))
    source = source_image()
    made = engine.generate(batch(masked(negative="", scheduler="euler")), source_image=source,
                           mask_image=left_half_mask())[0].image
    assert type(engine.inpaint_pipeline()).__name__ == INPAINT_PIPELINES[family]
    difference = np.abs(pixels(made) - pixels(source))
    assert difference[:, 34:].max() <= 2 and difference[:, :30].mean() > 20
