"""The OpenAI-style `POST /api/images/edits` body (multipart), as one of our jobs.

The OpenAI SDK's `client.images.edit(image=..., mask=..., prompt=..., n=..., size=...)`
sends `multipart/form-data`: the files `image` (or `image[]`, one of them) and `mask`, and
every other field as text. Text fields are read as the generations body's
(`imagegen.jobs.foundry_body.job_from_foundry`: same fields, same checks, same refusals),
`image` becomes its `image_prompt.image`.

OpenAI's mask is the inverse of ours: a PNG whose *fully transparent* pixels (alpha 0) are
the ones edited ("An additional image whose fully transparent areas (e.g. where alpha is
zero) indicate where image should be edited", OpenAI's images API reference). It becomes our
mask, white where the alpha is 0 and black elsewhere; a mask without an alpha channel is
refused, as OpenAI refuses it. Without a mask, an `image` with transparent pixels is its own
mask, as OpenAI reads it ("If mask is not provided, image must have transparency, which will
be used as the mask"); an opaque image without a mask is img2img of it.

Pure: parsing and checking only; storing the image and mask is the route's
(`triggers.foundry`).
"""

from __future__ import annotations

import base64
import io
from email import policy
from email.parser import BytesParser
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegen.core.field_errors import reject, show_value
from imagegen.core.limits import DEFAULT_LIMITS, Limits
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs.source_image_checks import check_source_image

FILE_FIELDS = ("image", "image[]", "mask")
WHOLE_NUMBER_FIELDS = ("n", "seed", "steps", "num_inference_steps", "output_compression", "partial_images")
# OpenAI's edit-only fields that change nothing here, checked against the SDK's values.
EDIT_ONLY_CHOICES: dict[str, tuple[str, ...]] = {"input_fidelity": ("high", "low")}
MAX_PARTS = 40  # the SDK sends at most ~20 fields
MAX_TEXT_BYTES = 64 * 1024  # every text field together


def edit_body_limit(limits: Limits) -> int:
    """The most bytes an edit body may have: two largest source images and the text fields."""
    return 2 * limits.max_source_bytes + MAX_TEXT_BYTES


def read_multipart(data: bytes, content_type: str, limits: Limits | None = None) -> tuple[dict[str, str], dict[str, bytes]]:
    """The text fields and the files of a `multipart/form-data` body, size-checked first.
    Raises JobValidationError (path `body`) for a body that is not one."""
    limits = limits or DEFAULT_LIMITS
    if len(data) > edit_body_limit(limits):
        raise reject("body", "max_body_bytes",
                     f"the request body is {len(data):,} bytes; the limit is {edit_body_limit(limits):,} bytes")
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type.lower():
        raise reject("body", "multipart", "the body must be `multipart/form-data` (as OpenAI's `images.edit` "
                     "sends it): `image`, `mask` and `prompt` as form fields")
    try:
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = BytesParser(policy=policy.HTTP).parsebytes(header + data)
    except (UnicodeEncodeError, ValueError):
        raise reject("body", "multipart", "the multipart body could not be read") from None
    if not message.is_multipart() or message.defects:
        raise reject("body", "multipart", "the multipart body could not be read (no parts, or a broken boundary)")
    texts: dict[str, str] = {}
    files: dict[str, bytes] = {}
    errors: list[FieldError] = []
    parts = list(message.iter_parts())
    if len(parts) > MAX_PARTS:
        raise reject("body", "max_parts", f"the body has {len(parts)} parts; the limit is {MAX_PARTS}")
    text_bytes = 0
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise reject("body", "multipart", "every part must have a `Content-Disposition: form-data; name=...`")
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if name in texts or name in files or (name in ("image", "image[]") and ("image" in files)):
            errors.append(FieldError(path=name.removesuffix("[]"), rule="one_file",
                                     message=f"`{name.removesuffix('[]')}` must be sent once: one image per edit"))
            continue
        if name in FILE_FIELDS:
            files[name.removesuffix("[]")] = payload
            continue
        text_bytes += len(payload)
        if text_bytes > MAX_TEXT_BYTES:
            raise reject("body", "max_text_bytes", f"the text fields are over {MAX_TEXT_BYTES:,} bytes together")
        try:
            texts[name] = payload.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(FieldError(path=name, rule="utf8", message=f"`{name}` must be UTF-8 text"))
    if errors:
        raise JobValidationError(errors)
    return texts, files


def foundry_body_of_edit(texts: dict[str, str], files: dict[str, bytes]) -> dict:
    """The generations body (`job_from_foundry`'s) an edit's form fields mean."""
    body: dict = {}
    errors: list[FieldError] = []
    for key, value in texts.items():
        if key in EDIT_ONLY_CHOICES:
            if value not in EDIT_ONLY_CHOICES[key]:
                errors.append(FieldError(path=key, rule="one_of", message=(
                    f"`{key}` must be one of {', '.join(f'`{c}`' for c in EDIT_ONLY_CHOICES[key])} (OpenAI's values), "
                    f"got {show_value(value)}")))
            continue
        if key in WHOLE_NUMBER_FIELDS and value.strip().lstrip("-").isdigit():
            body[key] = int(value)
        elif key == "stream" and value in ("true", "false"):
            body[key] = value == "true"
        else:
            body[key] = value
    if "image" not in files:
        errors.append(FieldError(path="image", rule="required",
                                 message="`image` is required: the image to edit, as a file part"))
    else:
        body["image_prompt"] = {"image": base64.b64encode(files["image"]).decode("ascii")}
    if errors:
        raise JobValidationError(errors)
    return body


def edit_errors(errors: list[FieldError]) -> list[FieldError]:
    """Errors about the generations body worded with the edit's field names (`image`)."""
    renamed = []
    for error in errors:
        name = {"prompts[0].image": "image", "prompts[0].mask": "mask"}.get(error.path)
        if error.path.startswith("image_prompt."):
            name = error.path.removeprefix("image_prompt.")
        if name is not None:
            error = FieldError(path=name, rule=error.rule, message=error.message.replace(f"`{error.path}`", f"`{name}`"))
        renamed.append(error)
    return renamed


def edit_mask(files: dict[str, bytes], limits: Limits | None = None) -> bytes | None:
    """Our mask for an edit's files: the `mask`'s, else the `image`'s own transparency, else
    None (img2img)."""
    if "mask" in files:
        return mask_from_openai(files["mask"], limits)
    if "image" in files:
        return mask_from_openai(files["image"], limits, path="image", required=False)
    return None


def mask_from_openai(data: bytes, limits: Limits | None = None, *, path: str = "mask",
                     required: bool = True) -> bytes | None:
    """OpenAI's mask (transparent = edit) as ours (white = repaint, black = keep), a PNG.
    Without an alpha channel (or, when not `required`, without a transparent pixel): a 400
    naming `path`, or None when not `required`."""
    from PIL import Image  # imported here: the route's module loads without PIL until an edit comes

    check_source_image(data, limits, path=path)  # size, format and header first, as any upload
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if "A" in image.getbands():
            alpha = image.getchannel("A")
        elif image.mode == "P" and "transparency" in image.info:
            alpha = image.convert("RGBA").getchannel("A")
        else:
            alpha = None
    if alpha is None or (not required and alpha.getextrema()[0] != 0):
        if not required:
            return None
        raise reject(path, "mask_alpha", f"`{path}` must be a PNG with an alpha channel: its fully transparent "
                     "pixels (alpha 0) are the ones edited, as OpenAI's images API reads it")
    ours = alpha.point(lambda value: 255 if value == 0 else 0)
    buffer = io.BytesIO()
    ours.save(buffer, "PNG")
    return buffer.getvalue()


class FoundryEditRequest(BaseModel):
    """The `POST /api/images/edits` form (multipart/form-data), for the API document. The
    route reads it with `read_multipart` and `foundry_body_of_edit`: every text field of
    the generations body (`FoundryRequest`: `negative_prompt`, `seed`, `steps`,
    `output_format`, OpenAI's checked-and-ignored fields ...) is taken here too, as text."""

    model_config = ConfigDict(extra="allow")

    image: bytes = Field(description="The image to edit: PNG, JPEG or WebP (as `image` or `image[]`, one file)")
    mask: bytes | None = Field(None, description="OpenAI's mask: a PNG whose fully transparent pixels (alpha 0) "
                               "are edited, the rest kept; resized to the image. Without it: img2img of `image`")
    prompt: str = Field(description="What the edited image shows")
    n: int | None = Field(None, ge=1, description="How many images; default 1")
    size: str | None = Field(None, description="WIDTHxHEIGHT, or `auto`; default 512x512")
    response_format: Literal["b64_json", "url"] | None = Field(None, description="`url` adds each image's URL")
    model: str | None = Field(None, description="A catalog model by name; any other value: the default model")
    input_fidelity: Literal["high", "low"] | None = Field(None, description="OpenAI's: checked, and ignored")
