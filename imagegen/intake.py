"""Turning what a user sent (an HTTP body, a dropped file, a schedule) into a checked job.

Everything here runs before an orchestration starts, so a job that would fail on its
inputs is rejected with every reason at once and nothing is generated.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import PurePosixPath

from imagegen import notify, storage
from imagegen.messages import JobRequest
from imagegen.types import JobSource
from imagegen.settings import AUTO_MAX_BATCH, Settings
from imagegen.source_images import store_inline_images
from imagegen.documents import load_document
from imagegen.spec import JobSpec, Limits, ReviewSpec, parse_job, slugify
from imagegen.types import FieldError, JobValidationError

JOB_FILE_SUFFIXES = (".json", ".yaml", ".yml", ".txt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def read_job_file(data: bytes, filename: str, limits: Limits | None = None,
                  settings: Settings | None = None) -> JobSpec:
    """A job from a file: JSON or YAML job specs, or `.txt` with one prompt per line.

    A `.txt` job takes the deployment's defaults for prompt-only jobs
    (`IMAGEGEN_DEFAULT_SIZE`, `IMAGEGEN_DEFAULT_STEPS`) and is named after the file.
    """
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix == ".txt":
        most = (limits or Limits()).max_job_bytes
        if len(data) > most:
            raise JobValidationError([FieldError(path="file", rule="max_job_bytes", message=(
                f"`{filename}` is {len(data):,} bytes; the limit is {most:,} bytes"))])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JobValidationError([FieldError(
                path="file", rule="utf8", message=f"`{filename}` must be UTF-8 text, one prompt per line")]) from None
        prompts = [{"text": line.strip()} for line in text.splitlines() if line.strip() and not line.startswith("#")]
        if not prompts:
            raise JobValidationError([FieldError(
                path="prompts", rule="min_items", message=f"`{filename}` has no prompts: write one prompt per line")])
        settings = settings or Settings.from_env()
        variants = {"sizes": [settings.default_size], "steps": settings.default_steps}
        return parse_job({"prompts": prompts, "variants": variants}, filename=filename, limits=limits)
    if suffix not in JOB_FILE_SUFFIXES:
        raise JobValidationError([FieldError(
            path="file", rule="file_type",
            message=f"`{filename}` is not a job file: use .json, .yaml, .yml or .txt (one prompt per line)")])
    job = parse_job(data, filename=filename, limits=limits)
    check_notify(job, settings)
    return job


def check_notify(job: JobSpec, settings: Settings | None = None, resolver: notify.Resolver = notify.resolve) -> None:
    """Refuse a job whose own webhook URL this deployment does not allow (see imagegen.notify)."""
    if job.notify is not None:
        notify.check_job_url(job.notify.url, (settings or Settings.from_env()).notify_hosts, resolver)


def job_name_from(filename: str) -> str:
    return slugify(PurePosixPath(filename).stem)


def read_job_body(data: bytes, filename: str, store: storage.BlobStore, limits: Limits | None = None) -> JobSpec:
    """A job from an HTTP body: like a job file, but prompts may carry inline images.

    A prompt's `image` may be a `data:image/png;base64,...` URL: it is checked, stored
    under `inputs/` and replaced by its blob name before the job is validated. A `.txt`
    body is read as a dropped `.txt` file is: one prompt per line, deployment defaults.
    """
    limits = limits or Limits()
    check_body_size(data, filename, limits)
    if filename.lower().endswith(".txt"):
        return read_job_file(data, filename, limits)
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
    check_notify(job)
    return job


def body_limit(filename: str, limits: Limits) -> int:
    """The most bytes an HTTP body may have, checked before it is parsed: a job of
    `max_job_bytes`, and in JSON room besides for one largest source image inline (base64
    in a `data:` URL). YAML and text get no more: PyYAML reads ~50 kB/s on a busy core."""
    if filename.lower().endswith(".json"):
        return limits.max_job_bytes + inline_image_allowance(limits)
    return limits.max_job_bytes


def inline_image_allowance(limits: Limits) -> int:
    """Base64 of the largest source image, and room for its `data:image/...;base64,` prefix."""
    return 4 * -(-limits.max_source_bytes // 3) + 64


def check_body_size(data: bytes, filename: str, limits: Limits) -> None:
    most = body_limit(filename, limits)
    if len(data) > most:
        extra = "" if most == limits.max_job_bytes else (
            f" ({limits.max_job_bytes:,} for the job and {most - limits.max_job_bytes:,} for one inline source image)")
        raise JobValidationError([FieldError(path="body", rule="max_job_bytes", message=(
            f"the request body is {len(data):,} bytes; the limit is {most:,} bytes{extra}"))])


def inline_image_bytes(document) -> int:
    """How many characters of `document` are inline `data:` images in prompts."""
    prompts = document.get("prompts") if isinstance(document, dict) else None
    return sum(len(prompt["image"]) for prompt in (prompts if isinstance(prompts, list) else [])
               if isinstance(prompt, dict) and isinstance(prompt.get("image"), str)
               and prompt["image"].startswith("data:"))


def job_request(job: JobSpec, source: JobSource, origin: str = "", settings: Settings | None = None) -> JobRequest:
    settings = settings or Settings.from_env()
    max_batch = settings.max_batch_images or AUTO_MAX_BATCH
    return JobRequest(job=job.model_dump(mode="json"), source=source, origin=origin, max_batch=max_batch,
                      review=review_of(job, settings), notify=job.notify is not None or bool(settings.notify_url))


def review_of(job: JobSpec, settings: Settings) -> dict | None:
    """The review this job gets: its own `review`, else the deployment's `IMAGEGEN_REVIEW`
    (`on`: the defaults, 72h then reject); None when it publishes without one."""
    review = job.review if job.review is not None else (ReviewSpec() if settings.review else None)
    return review.model_dump() if review is not None and review.required else None


def new_job_id(name: str) -> str:
    """A fresh id for an HTTP job: readable name plus randomness (triggers may be random)."""
    return f"{slugify(name, 40)}-{uuid.uuid4().hex[:10]}"


def drop_job_id(blob_name: str, content: bytes) -> str:
    """The same file always maps to the same id, so it never runs twice.

    Derived from the blob's name and content rather than its ETag: a re-delivered blob
    keeps its ETag, but re-uploading an unchanged file gets a new one and must not run
    again; a changed file has new content and runs.
    """
    digest = hashlib.sha256(blob_name.encode() + b"\n" + hashlib.sha256(content).digest()).hexdigest()[:12]
    return f"drop-{slugify(PurePosixPath(blob_name).stem, 30)}-{digest}"


def schedule_job_id(schedule_name: str, slot: datetime) -> str:
    """One id per schedule and slot: a slot runs once however often the timer looks."""
    return f"schedule-{slugify(schedule_name, 40)}-{slot.strftime('%Y%m%dT%H%M%SZ')}"
