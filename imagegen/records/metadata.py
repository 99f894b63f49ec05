"""Image encoding with the generation parameters embedded, and reading them back.

Every image we publish says how it was made, in two forms:

- the familiar AUTOMATIC1111 text ("parameters"), which image viewers, civitai and the
  A1111 "PNG Info" tab show:
      a red sneaker
      Negative prompt: blurry
      Steps: 25, Sampler: DPM++ 2M, CFG scale: 7.0, Seed: 1234, Size: 512x512, Model: tiny
- the full parameters as JSON (key `imagegen`), which `read_parameters` returns.

PNG keeps them in text chunks `parameters` and `imagegen`. JPEG and WEBP keep them in
EXIF: the A1111 text in UserComment (A1111's own convention, UTF-16 with the "UNICODE"
marker) and the JSON, ASCII-escaped, in ImageDescription.

Encoding is deterministic (same pixels and parameters, same bytes: no timestamps, sorted
JSON keys, fixed quality), so an image's sha256 is stable across runs.
"""

from __future__ import annotations

import io
import json
from typing import Any

import PIL.Image
from PIL.PngImagePlugin import PngInfo

from imagegen.core.types import ImageFormat

JSON_KEY = "imagegen"  # PNG text chunk holding the parameters as JSON
TEXT_KEY = "parameters"  # PNG text chunk holding the A1111 text (A1111's own key)
JPEG_QUALITY = 95
WEBP_QUALITY = 90

# EXIF tags (TIFF/EXIF 2.3 numbers).
EXIF_IFD = 0x8769
IMAGE_DESCRIPTION = 0x010E
USER_COMMENT = 0x9286
UNICODE_MARKER = b"UNICODE\x00"  # EXIF UserComment character-code prefix for UTF-16

# Our scheduler names as A1111 names its samplers.
SAMPLER_NAMES = {
    "dpmpp": "DPM++ 2M",
    "euler": "Euler",
    "euler_a": "Euler a",
    "ddim": "DDIM",
    "lcm": "LCM",
}


def parameters_text(params: dict[str, Any]) -> str:
    """The A1111 "parameters" text for `params` (keys as in `imagegen.core.types.Variant`, plus
    `model`); settings that are absent are left out, as A1111 does."""
    lines = [str(params.get("prompt", ""))]
    if params.get("negative"):
        lines.append(f"Negative prompt: {params['negative']}")
    fields: list[str] = []
    if "steps" in params:
        fields.append(f"Steps: {params['steps']}")
    if "scheduler" in params:
        fields.append(f"Sampler: {SAMPLER_NAMES.get(params['scheduler'], params['scheduler'])}")
    if "guidance" in params:
        fields.append(f"CFG scale: {float(params['guidance'])}")
    if "seed" in params:
        fields.append(f"Seed: {params['seed']}")
    if "width" in params and "height" in params:
        fields.append(f"Size: {params['width']}x{params['height']}")
    if params.get("model"):
        fields.append(f"Model: {params['model']}")
    if params.get("strength") is not None:
        fields.append(f"Denoising strength: {params['strength']}")
    # The speed-ups change the image, so they are part of its recipe (only when on).
    if params.get("deepcache", 1) > 1:
        fields.append(f"DeepCache interval: {params['deepcache']}")
    if params.get("tiny_vae"):
        fields.append("VAE: TAESD")
    adapters = params.get("adapters") or []
    if adapters:  # as A1111 writes them: `Lora hashes: "name: hash"`, with the weights beside
        fields.append("Lora hashes: \"" + ", ".join(f"{a['name']}: {a['sha256'][:12]}" for a in adapters) + "\"")
        fields.append("Lora weights: \"" + ", ".join(f"{a['name']}: {a['weight']:g}" for a in adapters) + "\"")
    if fields:
        lines.append(", ".join(fields))
    return "\n".join(lines)


def encode_image(image: PIL.Image.Image, fmt: ImageFormat, parameters: dict[str, Any]) -> bytes:
    """`image` as `fmt` bytes with `parameters` embedded (JSON-serialisable values only)."""
    text = parameters_text(parameters)
    data = json.dumps(parameters, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    buffer = io.BytesIO()
    if fmt == "png":
        info = PngInfo()
        info.add_text(TEXT_KEY, text)  # latin-1 tEXt, or iTXt (UTF-8) when it must be
        info.add_text(JSON_KEY, data)
        image.save(buffer, format="PNG", pnginfo=info)
    elif fmt in ("jpeg", "webp"):
        exif = PIL.Image.Exif()
        exif[IMAGE_DESCRIPTION] = data
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = UNICODE_MARKER + text.encode("utf-16-be")
        if fmt == "jpeg":
            # JPEG has no alpha channel.
            image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, exif=exif.tobytes())
        else:
            image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=4, exif=exif.tobytes())
    else:
        raise ValueError(f"`format` must be one of png, jpeg, webp, got {fmt!r}")
    return buffer.getvalue()


def read_parameters(data: bytes) -> dict[str, Any]:
    """The parameters JSON embedded by `encode_image`, from PNG, JPEG or WEBP bytes."""
    try:
        image = PIL.Image.open(io.BytesIO(data))
    except PIL.UnidentifiedImageError:
        raise ValueError("image data is not a PNG, JPEG or WEBP image") from None
    with image:
        if image.format == "PNG":
            raw = image.info.get(JSON_KEY)
        else:
            raw = image.getexif().get(IMAGE_DESCRIPTION)
        if raw is None:
            raise ValueError(
                f"{image.format} image carries no `{JSON_KEY}` parameters "
                "(PNG text chunk or EXIF ImageDescription)"
            )
    parameters: dict[str, Any] = json.loads(raw)
    return parameters


def read_parameters_text(data: bytes) -> str | None:
    """The A1111 "parameters" text, from PNG, JPEG or WEBP bytes; None when absent."""
    with PIL.Image.open(io.BytesIO(data)) as image:
        if image.format == "PNG":
            text: str | None = image.info.get(TEXT_KEY)
            return text
        comment: bytes | None = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    if not comment:
        return None
    if comment.startswith(UNICODE_MARKER):
        return comment[len(UNICODE_MARKER):].decode("utf-16-be")
    return comment.split(b"\x00", 8)[-1].decode("utf-8", "replace")  # ASCII marker
