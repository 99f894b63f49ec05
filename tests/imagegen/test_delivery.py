"""Exact delivery sizes: the size a model makes an image at, and the size delivered."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from imagegen.core.settings import Settings
from imagegen.core.types import Batch, Variant
from imagegen.generation.delivery import deliver, generation_size, native_side
from imagegen.generation.engine import DiffusionEngine

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(("asked", "native", "multiple", "made"), [
    ((1024, 1024), 1024, 8, (1024, 1024)),  # native: as asked
    ((1216, 832), 1024, 8, (1216, 832)),  # SDXL's usual landscape size: as asked
    ((768, 512), 512, 8, (768, 512)),  # SD 1.5's 3:2: as asked
    ((1080, 1920), 1024, 8, (944, 1672)),  # a story on SDXL: 9:16 within the budget
    ((1200, 628), 1024, 16, (1200, 624)),  # a link ad on FLUX: sides of 16
    ((1456, 180), 512, 8, (1456, 176)),  # a banner on SD 1.5: few pixels, sides of 8
    ((1080, 1080), 512, 8, (624, 624)),  # SD 1.5 does not draw 1080 px well
    ((60, 64), 64, 8, (64, 64)),
    ((3, 2048), 512, 8, (8, 2048)),  # never a side of 0
])
def test_the_size_made_keeps_the_aspect_within_the_budget_on_the_models_multiple(asked, native, multiple, made):
    width, height = generation_size(*asked, native, multiple)
    assert (width, height) == made
    assert width % multiple == 0 and height % multiple == 0
    assert width * height <= 1.02 * 1.5 * native * native  # the budget, but for rounding to the multiple


def gradient(width: int, height: int) -> PIL.Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    return PIL.Image.fromarray(np.stack([np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)),
                                         np.full((height, width), 128, np.uint8)], axis=-1))


@pytest.mark.parametrize("fit", ["cover", "contain", "stretch"])
def test_every_fit_delivers_exactly_the_size_asked(fit):
    made = gradient(944, 1680)
    assert deliver(made, 1080, 1920, fit).size == (1080, 1920)
    assert deliver(made, 1456, 180, fit).size == (1456, 180)
    assert deliver(made, 944, 1680, fit) is made  # already the size asked: untouched


def test_cover_crops_the_middle_and_contain_pads_with_the_color():
    square = gradient(100, 100)
    banner = deliver(square, 200, 50, "cover")  # scaled to 200x200, rows 75..125 kept
    assert abs(int(np.asarray(banner)[25, 100, 1]) - 127) <= 3  # the middle row of the square
    padded = deliver(square, 200, 100, "contain", "#ff0000")
    assert padded.getpixel((10, 50)) == (255, 0, 0) and padded.getpixel((190, 50)) == (255, 0, 0)
    assert padded.getpixel((100, 50)) != (255, 0, 0)


@pytest.fixture(scope="module")
def engine() -> DiffusionEngine:
    return DiffusionEngine("tiny", settings=Settings(device="cpu"))


def variant(width: int, height: int, fit: str = "cover") -> Variant:
    return Variant(id=f"v000-{width}x{height}-{fit}", index=0, prompt_index=0, prompt="a red sneaker",
                   base_prompt="a red sneaker", seed=7, width=width, height=height, guidance=7.0, steps=2,
                   scheduler="dpmpp", fit=fit)


def test_the_engine_delivers_a_size_the_model_cannot_make_exactly(engine):
    native, multiple = native_side(engine.load()), engine.family.size_multiple
    assert (native, multiple) == (64, 8)  # the tiny model: SD 1.x's layout at 64 px
    [odd] = engine.generate(Batch(id="b000", variants=[variant(100, 30)]))
    assert odd.image.size == (100, 30) and odd.generated_size == generation_size(100, 30, native, multiple)
    [plain] = engine.generate(Batch(id="b000", variants=[variant(64, 64)]))
    assert plain.image.size == (64, 64) and plain.generated_size is None  # made as asked


def test_fits_of_one_image_differ_only_in_how_it_is_fitted(engine):
    made = {fit: engine.generate(Batch(id="b000", variants=[variant(100, 30, fit)]))[0] for fit in ("cover", "stretch")}
    assert made["cover"].generated_size == made["stretch"].generated_size
    assert made["cover"].image.size == made["stretch"].image.size == (100, 30)
    assert made["cover"].image.tobytes() != made["stretch"].image.tobytes()
