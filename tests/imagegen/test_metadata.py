"""Parameters embedded in PNG, JPEG and WEBP, read back; deterministic bytes."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import PIL.Image
import pytest

from imagegen.records.metadata import encode_image, parameters_text, read_parameters, read_parameters_text

PARAMETERS = {
    "prompt": "a red sneaker – 靴, studio lighting",
    "negative": "blurry",
    "steps": 25,
    "scheduler": "dpmpp",
    "guidance": 7,
    "seed": 1234,
    "width": 64,
    "height": 48,
    "model": "tiny",
    "revision": "tiny-v1",
    "variant_id": "v003",
}
A1111_TEXT = (
    "a red sneaker – 靴, studio lighting\n"
    "Negative prompt: blurry\n"
    "Steps: 25, Sampler: DPM++ 2M, CFG scale: 7.0, Seed: 1234, Size: 64x48, Model: tiny"
)


@pytest.fixture
def image() -> PIL.Image.Image:
    return PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt, pil_format", [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")])
def test_parameters_read_back_from_every_format(image, fmt, pil_format):
    data = encode_image(image, fmt, PARAMETERS)
    with PIL.Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == pil_format and decoded.size == (64, 48)
    assert read_parameters(data) == PARAMETERS
    assert read_parameters_text(data) == A1111_TEXT


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encoding_is_deterministic(image, fmt):
    first = hashlib.sha256(encode_image(image, fmt, PARAMETERS)).hexdigest()
    assert hashlib.sha256(encode_image(image.copy(), fmt, dict(PARAMETERS))).hexdigest() == first


def test_png_has_the_a1111_parameters_chunk(image):
    with PIL.Image.open(io.BytesIO(encode_image(image, "png", PARAMETERS))) as decoded:
        assert decoded.info["parameters"] == A1111_TEXT


def test_png_keeps_the_pixels_exactly(image):
    with PIL.Image.open(io.BytesIO(encode_image(image, "png", PARAMETERS))) as decoded:
        assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_a1111_text_leaves_out_what_is_absent_and_adds_img2img_strength():
    text = parameters_text({"prompt": "a cat", "negative": "", "steps": 4, "scheduler": "euler_a",
                            "guidance": 1.5, "seed": 7, "width": 512, "height": 768, "strength": 0.6})
    assert text == "a cat\nSteps: 4, Sampler: Euler a, CFG scale: 1.5, Seed: 7, Size: 512x768, Denoising strength: 0.6"


def test_a1111_text_names_the_speedups_that_changed_the_image():
    base = {"prompt": "a cat", "steps": 4, "seed": 7}
    assert parameters_text({**base, "deepcache": 1, "tiny_vae": False}) == "a cat\nSteps: 4, Seed: 7"
    assert parameters_text({**base, "deepcache": 3, "tiny_vae": True}) == (
        "a cat\nSteps: 4, Seed: 7, DeepCache interval: 3, VAE: TAESD")


def test_generated_images_carry_their_negative_prompt_and_speedups():
    from imagegen.core.types import Variant
    from imagegen.service.output_checks import image_parameters

    variant = Variant(id="v000", index=0, prompt_index=0, prompt="a cat", base_prompt="a cat", negative="blurry",
                      seed=3, width=64, height=64, guidance=7.0, steps=4, scheduler="dpmpp", deepcache=2)
    text = read_parameters_text(encode_image(PIL.Image.new("RGB", (8, 8)), "png",
                                             image_parameters(variant, "tiny", "tiny-v1")))
    assert text.splitlines()[1] == "Negative prompt: blurry"
    assert "DeepCache interval: 2" in text


def test_unknown_format_and_foreign_images_are_refused(image):
    with pytest.raises(ValueError, match=r"`format` must be one of png, jpeg, webp, got 'gif'"):
        encode_image(image, "gif", PARAMETERS)
    plain = io.BytesIO()
    image.save(plain, format="PNG")
    with pytest.raises(ValueError, match=r"PNG image carries no `imagegen` parameters"):
        read_parameters(plain.getvalue())
    with pytest.raises(ValueError, match=r"not a PNG, JPEG or WEBP image"):
        read_parameters(b"not an image")
