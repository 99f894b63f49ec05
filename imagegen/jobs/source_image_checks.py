"""Source images for img2img are untrusted input: checked and decoded once, before anything runs.

`check_source_image` reads the size from the header before any pixel is decoded, and only
PNG, JPEG and WebP get in; `decode_image` turns base64 (or a `data:` URL) into checked bytes.
Pure: storing them is `imagegen.storage.source_images`.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Any

from imagegen.core.field_errors import reject, show_value
from imagegen.core.limits import DEFAULT_LIMITS, Limits
from imagegen.core.types import FieldError, JobValidationError

# Formats PIL may decode for us. PIL can open dozens more (EPS even shells out to
# Ghostscript); a source image is untrusted input, so only the three web formats get in.
SOURCE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")


def check_source_image(data: bytes, limits: Limits | None = None, *, path: str = "image"):
    """Decode an img2img source image safely and return it as an RGB `PIL.Image.Image`.

    Raises `JobValidationError` naming `path` (e.g. `prompts[1].image`) when the bytes are
    too many, are not a PNG/JPEG/WebP image, or the image is larger than
    `limits.max_source_side` on a side. The size in the header is checked before the pixels
    are decoded, so a small file that claims to be 100,000 px wide costs nothing.
    """
    from PIL import Image, ImageOps  # imported here: checking a job without images needs no PIL

    limits = limits or DEFAULT_LIMITS
    if len(data) > limits.max_source_bytes:
        raise reject(
            path, "max_source_bytes",
            f"`{path}` is {len(data):,} bytes; the limit is {limits.max_source_bytes:,} bytes",
        )
    if not data:
        raise reject(path, "not_an_image", f"`{path}` is empty; expected a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            # PIL warns (rather than raises) between its two bomb thresholds; make it an error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as probe:
                width, height = probe.size  # from the header only: nothing decoded yet
                if max(width, height) > limits.max_source_side:
                    raise reject(
                        path, "max_source_side",
                        f"`{path}` is {width}x{height} px; the limit is {limits.max_source_side} px per side",
                    )
                probe.verify()  # checks the file's structure and checksums without decoding
            # verify() leaves the image unusable, so open again to decode the pixels.
            image: Image.Image
            with Image.open(io.BytesIO(data), formats=SOURCE_FORMATS) as image:
                image.load()
                try:
                    image = ImageOps.exif_transpose(image)  # phone photos carry their rotation in EXIF
                except Exception:  # a broken EXIF block is no reason to refuse the pixels
                    pass
                return image.convert("RGB")
    except JobValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise reject(
            path, "max_source_side",
            f"`{path}` declares too many pixels to decode; the limit is {limits.max_source_side} px per side",
        ) from None
    except Image.UnidentifiedImageError:
        raise reject(
            path, "not_an_image",
            f"`{path}` is not a PNG, JPEG or WebP image ({len(data):,} bytes of something else)",
        ) from None
    except Exception as error:  # PIL raises many types for bad input (OSError, SyntaxError, ...)
        reason = str(error) or type(error).__name__
        raise reject(
            path, "not_an_image",
            f"`{path}` could not be read as a PNG, JPEG or WebP image ({len(data):,} bytes): {reason}",
        ) from None


def decode_image(text: Any, limits: Limits, path: str = "image_prompt.image") -> bytes:
    """Base64 (optionally a `data:image/...;base64,` URL) -> checked image bytes."""
    if not isinstance(text, str) or not text:
        raise JobValidationError([FieldError(path=path, rule="type", message=f"`{path}` must be a base64-encoded image, got {show_value(text)}")])
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    text = "".join(text.split())  # clients wrap base64 at 76 columns
    # Four base64 characters carry three bytes: refuse an oversized image before decoding it.
    if len(text) // 4 * 3 > limits.max_source_bytes + 3:
        raise JobValidationError([FieldError(
            path=path, rule="max_source_bytes", message=
            f"`{path}` decodes to about {len(text) // 4 * 3:,} bytes; the limit is {limits.max_source_bytes:,} bytes",
        )])
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise JobValidationError([FieldError(path=path, rule="base64", message=f"`{path}` is not valid base64: {error}")]) from None
    check_source_image(data, limits, path=path)
    return data
