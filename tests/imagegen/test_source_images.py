"""Source images: decoded safely to RGB, or refused with the field, the rule and why."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image

from imagegen.core.limits import Limits
from imagegen.core.types import JobValidationError
from imagegen.jobs.source_image_checks import check_source_image
from tests.imagegen.conftest import png

# --- source images ------------------------------------------------------------------------------------


def test_source_image_is_decoded_to_rgb():
    image = check_source_image(png(80, 60, "RGBA"))
    assert (image.mode, image.size) == ("RGB", (80, 60))


def test_corrupt_source_image_is_refused():
    data = png(80, 60)
    with pytest.raises(JobValidationError) as caught:
        check_source_image(data[: len(data) // 2], path="prompts[1].image")
    (error,) = caught.value.errors
    assert error.path == "prompts[1].image" and error.rule == "not_an_image"
    assert error.message.startswith("`prompts[1].image` could not be read")


def test_source_image_over_the_byte_limit_is_refused():
    with pytest.raises(JobValidationError) as caught:
        check_source_image(png(80, 60), Limits(max_source_bytes=20), path="prompts[0].image")
    (error,) = caught.value.errors
    assert error.rule == "max_source_bytes" and "the limit is 20 bytes" in error.message
    assert error.message.startswith("`prompts[0].image` is ")


def test_source_image_over_the_side_limit_is_refused_from_its_header():
    # A 4097 px wide image; then a 'bomb': a header claiming 100000x100000 with almost no data.
    with pytest.raises(JobValidationError) as caught:
        check_source_image(png(4097, 8), path="image")
    assert caught.value.errors[0].message == "`image` is 4097x8 px; the limit is 4096 px per side"
    bomb = bytearray(png(8, 8))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")  # and the chunk's CRC to match
    with pytest.raises(JobValidationError) as caught:
        check_source_image(bytes(bomb))
    assert caught.value.errors[0].rule == "max_source_side"


def test_source_image_of_another_format_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(JobValidationError, match="not a PNG, JPEG or WebP image"):
        check_source_image(buffer.getvalue())
