"""Turning what a user sent (an HTTP body, a dropped file, a schedule) into a checked job.

Everything here runs before an orchestration starts, so a job that would fail on its
inputs is rejected with every reason at once and nothing is generated.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import PurePosixPath

from imagegen.core.settings import Settings
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs import webhook_urls
from imagegen.jobs.spec import JobSpec, Limits, parse_job, slugify

JOB_FILE_SUFFIXES = (".json", ".yaml", ".yml", ".txt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def read_job_file(data: bytes, filename: str, limits: Limits | None = None,
                  settings: Settings | None = None) -> JobSpec:
    """A job from a file: JSON or YAML job specs, or `.txt` with one prompt per line.

    A `.txt` job takes the deployment's defaults for prompt-only jobs
    (`IMAGEGEN_DEFAULT_SIZE`, `IMAGEGEN_DEFAULT_STEPS`) and is named after the file.
    `settings`: the deployment's (default: the documented defaults).
    """
    settings = settings or Settings()
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
        variants = {"sizes": [settings.default_size], "steps": settings.default_steps}
        return parse_job({"prompts": prompts, "variants": variants}, filename=filename, limits=limits)
    if suffix not in JOB_FILE_SUFFIXES:
        raise JobValidationError([FieldError(
            path="file", rule="file_type",
            message=f"`{filename}` is not a job file: use .json, .yaml, .yml or .txt (one prompt per line)")])
    job = parse_job(data, filename=filename, limits=limits)
    check_notify(job, settings)
    return job


def check_notify(job: JobSpec, settings: Settings | None = None, resolver: webhook_urls.Resolver = webhook_urls.resolve) -> None:
    """Refuse a job whose own webhook URL this deployment does not allow (see imagegen.service.notify)."""
    if job.notify is not None:
        webhook_urls.check_job_url(job.notify.url, (settings or Settings()).notify_hosts, resolver)


def job_name_from(filename: str) -> str:
    return slugify(PurePosixPath(filename).stem)


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
    """How many characters of `document` are inline `data:` images (and masks) in prompts."""
    prompts = document.get("prompts") if isinstance(document, dict) else None
    return sum(len(prompt[key]) for prompt in (prompts if isinstance(prompts, list) else [])
               for key in ("image", "mask")
               if isinstance(prompt, dict) and isinstance(prompt.get(key), str)
               and prompt[key].startswith("data:"))


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
