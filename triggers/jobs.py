"""What every trigger knows of jobs: how one starts, and how its state reads to a user.

Not a trigger itself (it registers nothing): the HTTP API, the Foundry route, the blob
drop, the schedules and the gallery all import it, and no trigger imports another.

Starting a job is the same sequence whatever the event: settings → limits → store → read
the job → fit it to the model it names (its defaults; refused where the model cannot do
what it asks) → check and attach its source images → start `generate_batch` with the job
as its input. `start_job` is that sequence, once; each trigger says only how to read its job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

import azure.durable_functions as df
import azure.functions as func
from pydantic import ValidationError

from imagegen.core import blob_names
from imagegen.core.types import FieldError, JobSource, JobValidationError
from imagegen.generation.model_fit import ModelFit, fit_job
from imagegen.jobs import intake
from imagegen.jobs.spec import JobSpec, Limits
from imagegen.records import messages
from imagegen.records.messages import JobSummary, Progress
from imagegen.service import adapters
from imagegen.service.process import current
from imagegen.service.services import Services
from imagegen.storage import blobs as storage
from imagegen.storage.source_images import attach_images
from triggers.api_models import JobView
from triggers.responses import json_response

log = logging.getLogger(__name__)

# The orchestration every job is an instance of; its instance id is the job id.
ORCHESTRATION = "generate_batch"
# Runtime statuses after which an instance does nothing more.
TERMINAL = {"Completed", "Failed", "Terminated"}
# Runtime statuses in a user's words; a completed job's status is its summary's.
JOB_STATES = {"Pending": "queued", "Running": "running", "ContinuedAsNew": "running",
              "Suspended": "suspended", "Failed": "failed", "Terminated": "cancelled"}

# Reads a job from what the event brought; raises JobValidationError naming every bad field.
JobReader = Callable[[storage.BlobStore, Limits], JobSpec]


async def start_job(client: df.DurableOrchestrationClient, read: JobReader, *, source: JobSource,
                    job_id: str | None = None, origin: str = "", images_from: str = "inputs",
                    rename: Callable[[list[FieldError]], list[FieldError]] | None = None) -> tuple[str, JobSpec]:
    """Read a job, fit it to its model, check and attach its source images, and start its
    orchestration.

    `job_id`: None for a fresh id from the job's name. `images_from`: the container a bare
    image name (`sneaker.png`) is read from. `rename`: words the model's refusals in the
    request's own field names (the Foundry body's). Raises `JobValidationError` (nothing
    started) when the job, its model choice or one of its images is bad. Returns the job id
    and the job as started.
    """
    services = current()
    settings = services.settings
    limits = Limits.from_settings(settings)
    # Parsing (PyYAML takes seconds on a large body), the model's config files and blob
    # reads run on a worker thread: on the host's event loop they would stall every other request.
    job, fit = await asyncio.to_thread(_read_fit_and_attach, read, services, limits, images_from, rename)
    job_id = job_id or intake.new_job_id(job.name)
    request = messages.job_request(job, source, origin=origin, settings=settings, defaults=fit.defaults,
                                   warnings=fit.warnings, adapters=fit.adapters)
    await client.start_new(ORCHESTRATION, job_id, request.model_dump(mode="json"))
    log.info("started job %s (%s) on model %s from %s", job_id, job.name, job.model or "(default)", origin or source)
    return job_id, job


def _read_fit_and_attach(read: JobReader, services: Services, limits: Limits, images_from: str,
                         rename: Callable[[list[FieldError]], list[FieldError]] | None) -> tuple[JobSpec, ModelFit]:
    job = read(services.store, limits)
    try:
        fit = fit_to_model(job, services, limits)  # before its images are stored: a refused job stores nothing
    except JobValidationError as error:
        raise JobValidationError(rename(error.errors) if rename else error.errors) from None
    return attach_images(job, services.store, default_container=images_from, limits=limits), fit


def fit_to_model(job: JobSpec, services: Services, limits: Limits) -> ModelFit:
    """The defaults and warnings `job` gets from the model it names (the default when none),
    and its LoRA adapters checked for that model; JobValidationError for a name not in the
    catalog, what that model cannot do, or an adapter that is unknown, too large, not a LoRA
    or made for another model (every problem at once)."""
    name, entry = services.models.entry(job.model)
    facts = services.model_facts(name)
    errors: list[FieldError] = []
    fit = None
    try:
        fit = fit_job(job, facts, model=name, tiny_vae=entry.has_tiny_vae, limits=limits)
    except JobValidationError as error:
        errors += error.errors
    try:
        uses = adapters.resolve(job.adapters, services, facts, name)
    except JobValidationError as error:
        errors += error.errors
    if errors or fit is None:
        raise JobValidationError(errors)
    return fit.model_copy(update={"adapters": uses})


# Set by Container Apps (and App Service) built-in authentication for a signed-in user; the
# platform drops a client's own copy of the header. See docs/review.md for why it is trusted.
PRINCIPAL_HEADER = "x-ms-client-principal-name"


def is_job_id(job_id: str) -> bool:
    """Whether `job_id` could name a job: the one check every route that takes an id makes.

    Every job id this app makes is one blob-name segment (letters, digits, `.`, `_`, `-`,
    starting with a letter or digit; `blob_names.check_id`). Anything else is no job, and
    some of it would be misread further on: `.` and `..` (also sent as `%2e`) by the durable
    client as the instances collection, `#` and `?` (sent as `%23`, `%3F`) by the SDK,
    which pastes ids into URLs unescaped, so `J#x` asked for job `J`."""
    try:
        blob_names.check_id(job_id)
    except ValueError:
        return False
    return True


def origin(req: func.HttpRequest) -> str:
    """scheme://host of the request, so links work behind devhost and in Azure alike."""
    url = req.url
    return url[: url.index("/", url.index("//") + 2)] if "//" in url else ""


def accepted(client: df.DurableOrchestrationClient, req: func.HttpRequest, job_id: str) -> func.HttpResponse:
    """202 with the durable check-status payload, and Location pointing at our own job route."""
    check = client.create_check_status_response(req, job_id)
    payload = json.loads(check.get_body())
    job_url = f"{origin(req)}/api/jobs/{job_id}"
    payload.update({"jobId": job_id, "jobUrl": job_url})
    return json_response(payload, status=202, headers={"Location": job_url})


def read_progress(custom_status: Any) -> Progress | None:
    """The orchestration's custom status, read with the model `generate_batch` writes it with;
    None before it has set one (or for an instance that is not a job)."""
    value = _json(custom_status)
    try:
        return Progress.model_validate(value) if value is not None else None
    except ValidationError:
        return None


def read_summary(output: Any) -> JobSummary | None:
    """A completed job's output, read with the model `generate_batch` returns."""
    value = _json(output)
    try:
        return JobSummary.model_validate(value) if value is not None else None
    except ValidationError:
        return None


def job_state(runtime: str, output: Any, progress: Progress | None = None) -> str:
    """A job's status in a user's words, from its runtime status, output and custom status."""
    if runtime in ("Running", "ContinuedAsNew") and progress is not None:
        if progress.phase == "awaiting review" or progress.review_wake is not None:
            return "awaiting_review"  # also while it publishes a pass: it still takes decisions
        if progress.phase == "done" and progress.status:
            return progress.status  # ended; the orchestration may still be sending its last notification
    if runtime == "Completed":
        summary = read_summary(output)
        return summary.status if summary else "completed"
    return JOB_STATES.get(runtime, runtime.lower())


def job_view(status, base: str) -> dict:
    """What a user sees of a job: its state, progress, and when done its summary."""
    runtime = status.runtime_status.value if status.runtime_status else "Pending"
    request = status.input_ if isinstance(status.input_, dict) else _json(status.input_)
    output = status.output if isinstance(status.output, dict) or status.output is None else _json(status.output)
    job = (request or {}).get("job", {})
    view: dict[str, Any] = {
        "id": status.instance_id,
        "name": job.get("name", ""),
        "source": (request or {}).get("source", ""),
        "origin": (request or {}).get("origin", ""),
        "status": job_state(runtime, output, read_progress(status.custom_status)),
        "runtimeStatus": runtime,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
        "progress": status.custom_status,
        "links": {"self": f"{base}/api/jobs/{status.instance_id}",
                  "manifest": f"{base}/api/jobs/{status.instance_id}/manifest",
                  "cancel": f"{base}/api/jobs/{status.instance_id}/cancel",
                  "review": f"{base}/api/jobs/{status.instance_id}/review",
                  "gallery": f"{base}/api/gallery/jobs/{status.instance_id}"},
    }
    progress = read_progress(status.custom_status)
    if runtime in ("Running", "ContinuedAsNew") and progress and progress.phase == "done" and progress.summary:
        output = progress.summary.model_dump(mode="json")  # ended; the orchestration is sending its last notification
        runtime = "Completed"
    if runtime == "Completed" and isinstance(output, dict):
        view["summary"] = output
        view["manifestUrl"] = output.get("manifest_url")
    elif runtime == "Failed":
        view["error"] = status.output
    return JobView.model_validate(view).model_dump(mode="json", exclude_unset=True)


def _json(value: Any):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
