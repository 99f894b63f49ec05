"""The jobs HTTP API: submit a job, follow it, read its manifest and images, cancel it.

    POST /api/jobs                        job as JSON or YAML → 202 + Location: /api/jobs/{id}
                                          (text/plain: one prompt per line, named by ?name=)
    GET  /api/jobs                        jobs, newest first, paged (?top=&continuationToken=), filtered
                                          (&status=&source=&namePrefix=&createdAfter=); triggers/job_listing.py
    GET  /api/jobs/{id}                   status, progress; when done the summary and manifest URL
    GET  /api/jobs/{id}/manifest          the manifest JSON
    GET  /api/jobs/{id}/images/{variant}  one published image
    GET  /api/jobs/{id}/published/{variant}  an approved image's copy in published/ (jobs with review)
    POST /api/jobs/{id}/cancel            stop a running job
    POST /api/jobs/{id}/review            approve / reject variants of a job awaiting review

The job id is the orchestration's instance id. Errors are problem details.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from imagegen.core import blob_names
from imagegen.core.documents import load_json
from imagegen.core.types import FieldError, JobValidationError
from imagegen.records import review_book as review
from imagegen.records.manifest import ManifestVariant
from imagegen.records.messages import review_event
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from imagegen.storage import review_passes, source_images
from imagegen.storage.blobs import guess_content_type
from imagegen.storage.manifests import read_manifest
from triggers.api_models import CancelAccepted, JobList, ReviewAccepted
from triggers.job_listing import DurableInstances, ListingTooLarge, list_request, newest_jobs
from triggers.jobs import (
    ORCHESTRATION,
    PRINCIPAL_HEADER,
    TERMINAL,
    accepted,
    is_job_id,
    job_state,
    job_view,
    origin,
    read_progress,
    start_job,
)
from triggers.responses import invalid_job, json_response, not_found, problem, problems_on_failure

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="jobs", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def submit_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    if not body.strip():
        return problem(400, "Empty request", "Send a job as JSON or YAML in the request body (see docs/jobs.md).")
    filename = body_filename(req)
    try:
        job_id, _ = await start_job(
            client, lambda store, limits: source_images.read_job_body(body, filename, store, limits, current().settings), source="http")
    except JobValidationError as error:
        return invalid_job(error.errors)
    return accepted(client, req, job_id)


@bp.route(route="jobs", methods=["GET"])
# The binding's JSON text, not the SDK client: the list reads every page of the management
# API itself (triggers/job_listing.py says why), at the binding's `rpcBaseUrl`.
@bp.generic_input_binding(arg_name="client", type="durableClient")
@problems_on_failure
async def list_jobs(req: func.HttpRequest, client: str) -> func.HttpResponse:
    try:
        request = list_request(req.params)
    except JobValidationError as error:
        return problem(400, "Invalid query", "; ".join(e.message for e in error.errors), error.errors)
    try:
        async with DurableInstances.open(client) as hub:
            page = await newest_jobs(hub, request, base=origin(req))
    except ListingTooLarge:
        return problem(503, "Too many jobs to list", "One page would read more instances than the list "
                       "allows: narrow it with `createdAfter`, or keep less history (IMAGEGEN_RETENTION_DAYS).")
    listed = JobList(jobs=page.jobs, continuationToken=page.next.token() if page.next else None)
    return json_response(listed.model_dump(mode="json", exclude_unset=True))


@bp.route(route="jobs/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def get_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    job_id = req.route_params["id"]
    if not is_job_id(job_id):
        return not_found(job_id)
    status = await client.get_status(job_id, show_input=True)
    if not status or status.name != ORCHESTRATION:
        return not_found(job_id)
    return json_response(job_view(status, origin(req)))


@bp.route(route="jobs/{id}/manifest", methods=["GET"])
@problems_on_failure
def get_manifest(req: func.HttpRequest) -> func.HttpResponse:
    job_id = req.route_params["id"]
    if not is_job_id(job_id):
        return not_found(job_id)
    try:
        manifest = read_manifest(current().store, job_id)
    except (storage.BlobNotFound, ValueError):
        return problem(404, "Manifest not found",
                       f"Job {job_id!r} has no manifest yet: it is written when the job ends.")
    return json_response(manifest.model_dump(mode="json"))


def manifest_variant(store: storage.BlobStore, job_id: str, variant_id: str) -> ManifestVariant | func.HttpResponse:
    """The manifest's entry for one variant of a job, or the 404 that says which is missing."""
    if not is_job_id(job_id):
        return not_found(job_id)
    try:
        manifest = read_manifest(store, job_id)
    except (storage.BlobNotFound, ValueError):
        return not_found(job_id)
    entry = next((v for v in manifest.variants if v.id == variant_id), None)
    if entry is None:
        return problem(404, "Image not found", f"Job {job_id!r} has no variant {variant_id!r}.")
    return entry


@bp.route(route="jobs/{id}/images/{variant}", methods=["GET"])
@problems_on_failure
def get_image(req: func.HttpRequest) -> func.HttpResponse:
    job_id, variant_id = req.route_params["id"], req.route_params["variant"]
    store = current().store
    entry = manifest_variant(store, job_id, variant_id)
    if isinstance(entry, func.HttpResponse):
        return entry
    if entry.status != "ok" or not entry.blob:
        # Blocked and unchecked images stay in quarantine: the API never serves them.
        return problem(404, "Image not published", f"Variant {variant_id!r} is {entry.status}: it has no published image.")
    data = store.get(entry.blob)
    return func.HttpResponse(data, mimetype=guess_content_type(entry.blob))


@bp.route(route="jobs/{id}/published/{variant}", methods=["GET"])
@problems_on_failure
def get_published_image(req: func.HttpRequest) -> func.HttpResponse:
    job_id, variant_id = req.route_params["id"], req.route_params["variant"]
    store = current().store
    entry = manifest_variant(store, job_id, variant_id)
    if isinstance(entry, func.HttpResponse):
        return entry
    if entry.review is None or entry.review.published is None:
        decided = entry.review.decision if entry.review else "not approved"
        return problem(404, "Image not published", f"Variant {variant_id!r} is {decided}: it has no copy in published/.")
    return func.HttpResponse(store.get(entry.review.published), mimetype=guess_content_type(entry.review.published))


@bp.route(route="jobs/{id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def cancel_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    job_id = req.route_params["id"]
    if not is_job_id(job_id):
        return not_found(job_id)
    status = await client.get_status(job_id)
    if not status or status.name != ORCHESTRATION:
        return not_found(job_id)
    runtime = status.runtime_status.value
    state = job_state(runtime, status.output, read_progress(status.custom_status))
    if runtime in TERMINAL or state not in ("queued", "running", "awaiting_review"):
        return problem(409, "Job already ended", f"Job {job_id!r} is {state}: "
                       "only queued, running or awaiting-review jobs can be cancelled.")
    # Not a termination: the marker stops the job's GPU work at its next diffusion step,
    # and the event lets the orchestration collect what was made and write the manifest.
    store = current().store
    await asyncio.to_thread(store.put, blob_names.cancel_marker_ref(job_id), b"cancelled by user\n")
    await client.raise_event(job_id, "cancel", {"by": "user"})
    return json_response(CancelAccepted(id=job_id, status="cancelling").model_dump(), status=202)


@bp.route(route="jobs/{id}/review", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def review_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """One pass of a review: `{approve: [...], reject: [...], note, finish}` → 202."""
    job_id = req.route_params["id"]
    if not is_job_id(job_id):
        return not_found(job_id)
    status = await client.get_status(job_id)
    if not status or status.name != ORCHESTRATION:
        return not_found(job_id)
    try:
        body = load_json(req.get_body() or b"{}", "the decision")
    except JobValidationError as error:  # nested too deeply to be read
        return problem(400, "Invalid decision", "; ".join(e.message for e in error.errors), error.errors)
    except ValueError:
        return problem(400, "Invalid decision", "The body must be JSON: {\"approve\": [...], \"reject\": [...], "
                       "\"note\": \"...\", \"finish\": false}.")
    try:
        decision = review.parse_decision(body)
    except JobValidationError as error:
        return problem(400, "Invalid decision", "; ".join(e.message for e in error.errors), error.errors)
    if review_wake(status) is None:
        state = job_state(status.runtime_status.value if status.runtime_status else "Pending", status.output,
                          read_progress(status.custom_status))
        return problem(409, "Not awaiting review", f"Job {job_id!r} is {state}: decisions are taken only "
                       "while a job awaits review.", jobStatus=state)
    # The manifest written when the review began (and after each pass) lists the images
    # that can be decided and those already decided; passes recorded since decide more.
    store = current().store
    manifest = read_manifest(store, job_id)
    reviewable = [v.id for v in manifest.variants if v.status == "ok"]
    recorded = await asyncio.to_thread(review_passes.read_review_passes, store, job_id)
    decided = {v.id for v in manifest.variants if v.review is not None} | {
        variant_id for earlier in recorded for variant_id in (*earlier.approve, *earlier.reject)}
    decision = review.full_ids(decision, reviewable)
    problems = review.decision_problems(decision, reviewable, decided)
    reviewer = (req.headers.get(PRINCIPAL_HEADER) or "").strip() or decision.reviewer
    if not reviewer:
        problems.append(FieldError(path="reviewer", rule="required", message=(
            "`reviewer` is required: nobody is signed in (built-in authentication is off), so say who decides")))
    if problems:
        return problem(400, "Invalid decision", "; ".join(p.message for p in problems), problems)
    decision = decision.model_copy(update={"reviewer": reviewer, "at": review.now_utc()})
    # Recorded first, then the orchestration is woken to read it (orchestrations/review.py).
    await asyncio.to_thread(review_passes.append_review_pass, store, job_id, decision)
    now = await client.get_status(job_id)
    wake = review_wake(now)
    if wake is None:
        return problem(409, "Review ended", f"The review of job {job_id!r} ended before this pass could be "
                       "taken; it is recorded, not applied.", jobStatus=job_state(
                           now.runtime_status.value, now.output, read_progress(now.custom_status)))
    # The event the job waits for, and the next one: a job woken by another pass since
    # `now` was read waits for the next name, and reads this pass then.
    for name in (review_event(wake), review_event(wake + 1)):
        await client.raise_event(job_id, name, {"pass": decision.at})
    log.info("review of job %s by %s: %d approved, %d rejected%s", job_id, reviewer, len(decision.approve),
             len(decision.reject), ", finish" if decision.finish else "")
    taken = ReviewAccepted(id=job_id, status="awaiting_review", reviewer=reviewer, approve=decision.approve,
                           reject=decision.reject, finish=decision.finish)
    return json_response(taken.model_dump(mode="json"), status=202)


def review_wake(status) -> int | None:
    """The wake-up the job's review waits for next, when it takes decisions now (also while it
    publishes an earlier pass); None when it does not."""
    progress = read_progress(status.custom_status) if status else None
    running = status is not None and status.runtime_status is not None and status.runtime_status.value == "Running"
    return progress.review_wake if running and progress is not None else None


def body_filename(req: func.HttpRequest) -> str:
    """A name whose extension tells the parser what the body is."""
    content_type = req.headers.get("content-type", "").lower()
    if content_type.startswith("text/plain"):
        return f"{req.params.get('name') or 'job'}.txt"
    if "yaml" in content_type:
        return "job.yaml"
    if "json" in content_type:
        return "job.json"
    return "job.yaml" if not req.get_body().lstrip().startswith((b"{", b"[")) else "job.json"
