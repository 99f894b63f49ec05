"""Source images for img2img on their way into storage: stored once, named by blob, checked.

A source image arrives inline (base64 in an HTTP job or a Foundry body: `decode_image`,
then `store_inline_images` writes it under `inputs/`) or as a blob name (`attach_images`
resolves and checks it). Either way `imagegen.jobs.source_image_checks.check_source_image`
reads the size from the header before any pixel is decoded.
"""

from __future__ import annotations

import hashlib

from imagegen.core import blob_names
from imagegen.core.documents import load_document
from imagegen.core.limits import DEFAULT_LIMITS, Limits
from imagegen.core.settings import Settings
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs.intake import check_body_size, check_notify, inline_image_bytes, read_job_file
from imagegen.jobs.source_image_checks import check_source_image, decode_image
from imagegen.jobs.spec import JobSpec, parse_job
from imagegen.storage import blobs as storage

# Where img2img sources may come from: uploads, dropped files, and published (checked) outputs.
# Never quarantine/: a held or blocked image must not come back as an input.
SOURCE_CONTAINERS = ("inputs", "prompts", "outputs")

def store_inline_images(document, store: storage.BlobStore, limits: Limits | None = None) -> None:
    prompts = document.get("prompts") if isinstance(document, dict) else None
    errors: list[FieldError] = []
    fields = [(index, prompt, key) for index, prompt in enumerate(prompts if isinstance(prompts, list) else [])
              for key in ("image", "mask")]  # an inpainting mask comes in as its image does
    for index, prompt, key in fields:
        image = prompt.get(key) if isinstance(prompt, dict) else None
        if not isinstance(image, str) or not image.startswith("data:"):
            continue
        path = f"prompts[{index}].{key}"
        try:
            if not image.partition(",")[0].endswith(";base64"):
                raise JobValidationError([FieldError(path=path, rule="data_url", message=(
                    f"`{path}` must be a blob name or a `data:image/png;base64,...` URL, got {image[:40]!r}"))])
            data = decode_image(image, limits or DEFAULT_LIMITS, path)  # decoded and checked once
        except JobValidationError as error:
            errors.extend(error.errors)
            continue
        ref = blob_names.input_ref(f"{hashlib.sha256(data).hexdigest()[:16]}{image_suffix(image)}")
        store.put(ref, data)
        prompt[key] = ref
    if errors:
        raise JobValidationError(errors)


def attach_images(job: JobSpec, store: storage.BlobStore, *, default_container: str = "inputs",
                  limits: Limits | None = None) -> JobSpec:
    """Resolve each prompt's source image (and inpainting mask) to a blob name and check it
    before anything runs.

    A bare name (`sneaker.png`) is read from `default_container`; a full blob name
    (`inputs/sneaker.png`) is used as it is. Every error is reported at once.
    """
    errors: list[FieldError] = []
    prompts = []
    for index, prompt in enumerate(job.prompts):
        update: dict[str, str] = {}
        for key in ("image", "mask"):
            name = getattr(prompt, key)
            if name is None:
                continue
            path = f"prompts[{index}].{key}"
            ref = name if "/" in name else f"{default_container}/{name}"
            try:
                container = blob_names.split_ref(ref)[0]
            except ValueError:  # `~/.ssh/id_rsa`, `%2e%2e/x.png`: not a blob name at all
                container = None
            if container not in SOURCE_CONTAINERS:
                errors.append(FieldError(path=path, rule="source_container", message=(
                    f"`{path}` must name an image in {', '.join(SOURCE_CONTAINERS)}, got {name!r}")))
                continue
            try:
                check_source_image(store.get(ref), limits, path=path)
            except storage.BlobNotFound:
                errors.append(FieldError(path=path, rule="exists", message=(
                    f"`{path}` names {name!r}, but no blob {ref!r} exists: upload it first")))
                continue
            except JobValidationError as error:
                errors.extend(error.errors)
                continue
            update[key] = ref
        prompts.append(prompt.model_copy(update=update))
    if errors:
        raise JobValidationError(errors)
    return job.model_copy(update={"prompts": prompts})


def image_suffix(data_url: str) -> str:
    kind = data_url[5:].split(";", 1)[0].split("/")[-1].lower()
    return {"jpeg": ".jpg"}.get(kind, f".{kind}" if kind.isalnum() else ".png")


def read_job_body(data: bytes, filename: str, store: storage.BlobStore, limits: Limits | None = None,
                  settings: Settings | None = None) -> JobSpec:
    """A job from an HTTP body: like a job file, but prompts may carry inline images.

    A prompt's `image` may be a `data:image/png;base64,...` URL: it is checked, stored
    under `inputs/` and replaced by its blob name before the job is validated. A `.txt`
    body is read as a dropped `.txt` file is: one prompt per line, deployment defaults.
    """
    limits = limits or Limits()
    check_body_size(data, filename, limits)
    if filename.lower().endswith(".txt"):
        return read_job_file(data, filename, limits, settings)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JobValidationError([FieldError(path="body", rule="utf8", message="the request body must be UTF-8 JSON or YAML")]) from None
    document = load_document(text, filename=filename)
    without_images = len(data) - inline_image_bytes(document)
    if without_images > limits.max_job_bytes:
        raise JobValidationError([FieldError(path="body", rule="max_job_bytes", message=(
            f"the job is {without_images:,} bytes without its inline images; the limit is "
            f"{limits.max_job_bytes:,} bytes"))])
    store_inline_images(document, store, limits)
    job = parse_job(document, limits=limits)
    check_notify(job, settings)
    return job
