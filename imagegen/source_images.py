"""Source images for img2img: checked, decoded once, stored, and named by blob.

A source image is untrusted input. It arrives inline (base64 in an HTTP job or a Foundry
body: `decode_image`, then `store_inline_images` writes it under `inputs/`) or as a blob
name (`attach_images` resolves and checks it). Either way `check_source_image` reads the
size from the header before any pixel is decoded, and only PNG, JPEG and WebP get in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from typing import Any

from imagegen import storage
from imagegen.errors import reject, show_value
from imagegen.limits import DEFAULT_LIMITS, Limits
from imagegen.spec import JobSpec
from imagegen.types import FieldError, JobValidationError

# Where img2img sources may come from: uploads, dropped files, and published (checked) outputs.
# Never quarantine/: a held or blocked image must not come back as an input.
SOURCE_CONTAINERS = ("inputs", "prompts", "outputs")

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


def store_inline_images(document, store: storage.BlobStore, limits: Limits | None = None) -> None:
    prompts = document.get("prompts") if isinstance(document, dict) else None
    errors: list[FieldError] = []
    for index, prompt in enumerate(prompts if isinstance(prompts, list) else []):
        image = prompt.get("image") if isinstance(prompt, dict) else None
        if not isinstance(image, str) or not image.startswith("data:"):
            continue
        path = f"prompts[{index}].image"
        try:
            if not image.partition(",")[0].endswith(";base64"):
                raise JobValidationError([FieldError(path=path, rule="data_url", message=(
                    f"`{path}` must be a blob name or a `data:image/png;base64,...` URL, got {image[:40]!r}"))])
            data = decode_image(image, limits or DEFAULT_LIMITS, path)  # decoded and checked once
        except JobValidationError as error:
            errors.extend(error.errors)
            continue
        ref = storage.input_ref(f"{hashlib.sha256(data).hexdigest()[:16]}{image_suffix(image)}")
        store.put(ref, data)
        prompt["image"] = ref
    if errors:
        raise JobValidationError(errors)


def attach_images(job: JobSpec, store: storage.BlobStore, *, default_container: str = "inputs",
                  limits: Limits | None = None) -> JobSpec:
    """Resolve each prompt's source image to a blob name and check it before anything runs.

    A bare name (`sneaker.png`) is read from `default_container`; a full blob name
    (`inputs/sneaker.png`) is used as it is. Every error is reported at once.
    """
    errors: list[FieldError] = []
    prompts = []
    for index, prompt in enumerate(job.prompts):
        path = f"prompts[{index}].image"
        if prompt.image is None:
            prompts.append(prompt)
            continue
        ref = prompt.image if "/" in prompt.image else f"{default_container}/{prompt.image}"
        try:
            container = storage.split_ref(ref)[0]
        except ValueError:  # `~/.ssh/id_rsa`, `%2e%2e/x.png`: not a blob name at all
            container = None
        if container not in SOURCE_CONTAINERS:
            errors.append(FieldError(path=path, rule="source_container", message=(
                f"`{path}` must name an image in {', '.join(SOURCE_CONTAINERS)}, got {prompt.image!r}")))
            continue
        try:
            check_source_image(store.get(ref), limits, path=path)
        except storage.BlobNotFound:
            errors.append(FieldError(path=path, rule="exists", message=(
                f"`{path}` names {prompt.image!r}, but no blob {ref!r} exists: upload it first")))
            continue
        except JobValidationError as error:
            errors.extend(error.errors)
            continue
        prompts.append(prompt.model_copy(update={"image": ref}))
    if errors:
        raise JobValidationError(errors)
    return job.model_copy(update={"prompts": prompts})


def image_suffix(data_url: str) -> str:
    kind = data_url[5:].split(";", 1)[0].split("/")[-1].lower()
    return {"jpeg": ".jpg"}.get(kind, f".{kind}" if kind.isalnum() else ".png")
