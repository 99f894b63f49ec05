"""The edit route's form, read as OpenAI's SDK sends it: multipart parsing, the body it means,
and OpenAI's transparent-is-edited mask turned into ours (white repaints). Pure, no host."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from imagegen.core.limits import Limits
from imagegen.core.types import JobValidationError
from imagegen.jobs.foundry_edits import edit_mask, foundry_body_of_edit, read_multipart


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def form(data: dict, files: dict) -> tuple[bytes, str]:
    prepared = requests.Request("POST", "http://x/", data=data, files=files).prepare()
    return prepared.body, prepared.headers["content-type"]


def left_transparent() -> Image.Image:
    mask = Image.new("RGBA", (64, 64), (10, 20, 30, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))
    return mask


def rules(raised) -> list[tuple[str, str]]:
    return [(error.path, error.rule) for error in raised.value.errors]


def test_a_form_is_read_byte_for_byte_and_becomes_a_generations_body():
    image, mask = png(Image.new("RGB", (64, 64), "red")), png(left_transparent())
    body, content_type = form({"prompt": "a cat", "n": "2", "size": "64x64", "stream": "false", "input_fidelity": "high"},
                              {"image[]": ("i.png", image, "image/png"), "mask": ("m.png", mask, "image/png")})
    texts, files = read_multipart(body, content_type)
    assert files == {"image": image, "mask": mask}
    edit = foundry_body_of_edit(texts, files)
    assert {key: value for key, value in edit.items() if key != "image_prompt"} == {
        "prompt": "a cat", "n": 2, "size": "64x64", "stream": False}
    assert set(edit["image_prompt"]) == {"image"}


def test_openais_mask_becomes_ours_and_an_image_with_transparency_is_its_own_mask():
    ours = Image.open(io.BytesIO(edit_mask({"image": b"", "mask": png(left_transparent())})))
    assert ours.mode == "L" and ours.getpixel((0, 0)) == 255 and ours.getpixel((63, 0)) == 0
    alone = Image.open(io.BytesIO(edit_mask({"image": png(left_transparent())})))
    assert alone.getpixel((0, 0)) == 255 and alone.getpixel((63, 63)) == 0
    assert edit_mask({"image": png(Image.new("RGBA", (8, 8), (1, 2, 3, 255)))}) is None  # opaque: img2img
    assert edit_mask({"image": png(Image.new("RGB", (8, 8)))}) is None


def test_a_mask_without_alpha_or_not_an_image_is_refused_naming_mask():
    with pytest.raises(JobValidationError) as raised:
        edit_mask({"mask": png(Image.new("L", (8, 8), 255))})
    assert rules(raised) == [("mask", "mask_alpha")]
    with pytest.raises(JobValidationError) as raised:
        edit_mask({"mask": b"GIF89a not really"})
    assert rules(raised) == [("mask", "not_an_image")]


@pytest.mark.parametrize("body, content_type, rule", [
    (b"{}", "application/json", "multipart"),
    (b"--x\r\nno headers\r\n--x--\r\n", "multipart/form-data; boundary=x", "multipart"),
    (b"x" * 100, "multipart/form-data; boundary=x", "multipart"),
    (b"x" * (2 * 100 + 64 * 1024 + 1), "multipart/form-data; boundary=x", "max_body_bytes"),  # two images + text
], ids=["json", "no-name", "no-parts", "too-big"])
def test_a_body_that_is_not_a_small_form_is_refused(body, content_type, rule):
    with pytest.raises(JobValidationError) as raised:
        read_multipart(body, content_type, Limits(max_source_bytes=100))
    assert [error.rule for error in raised.value.errors] == [rule]


def test_two_images_and_a_missing_image_are_refused_naming_image():
    image = png(Image.new("RGB", (8, 8)))
    body, content_type = form({"prompt": "x"}, [("image[]", ("a.png", image, "image/png")),
                                                ("image[]", ("b.png", image, "image/png"))])
    with pytest.raises(JobValidationError) as raised:
        read_multipart(body, content_type)
    assert rules(raised) == [("image", "one_file")]
    with pytest.raises(JobValidationError) as raised:
        foundry_body_of_edit({"prompt": "x"}, {})
    assert rules(raised) == [("image", "required")]
