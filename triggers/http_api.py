"""The jobs HTTP API: submit a job, follow it, read its manifest and images, cancel it.

    POST /api/jobs                        job as JSON or YAML → 202 + Location: /api/jobs/{id}
                                          (text/plain: one prompt per line, named by ?name=)
    GET  /api/jobs                        recent jobs, newest first, paged (?top=&continuationToken=&status=)
    GET  /api/jobs/{id}                   status, progress; when done the summary and manifest URL
    GET  /api/jobs/{id}/manifest          the manifest JSON
    GET  /api/jobs/{id}/images/{variant}  one published image
    POST /api/jobs/{id}/cancel            stop a running job

The job id is the orchestration's instance id. Errors are problem details.
"""

from __future__ import annotations

import asyncio
import json
import logging

import azure.durable_functions as df
import azure.functions as func

from imagegen import intake, storage
from imagegen.manifest import read_manifest
from imagegen.settings import Settings
from imagegen.spec import Limits
from imagegen.types import JobValidationError
from triggers.responses import invalid_job, json_response, not_found, problem, problems_on_failure

bp = df.Blueprint()
log = logging.getLogger(__name__)

ORCHESTRATION = "generate_batch"
TERMINAL = {"Completed", "Failed", "Terminated"}
JOB_STATES = {"Pending": "queued", "Running": "running", "ContinuedAsNew": "running",
              "Suspended": "suspended", "Failed": "failed", "Terminated": "cancelled"}


@bp.route(route="jobs", methods=["POST"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def submit_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    if not body.strip():
        return problem(400, "Empty request", "Send a job as JSON or YAML in the request body (see docs/jobs.md).")
    settings = Settings.from_env()
    try:
        # Parsing (PyYAML takes seconds on a large body) and blob reads run on a worker
        # thread: on the host's event loop they would stall every other request.
        job = await asyncio.to_thread(read_job, body, body_filename(req), Limits.from_settings(settings))
    except JobValidationError as error:
        return invalid_job(error.errors)
    job_id = intake.new_job_id(job.name)
    await client.start_new(ORCHESTRATION, job_id, intake.job_request(job, "http", settings=settings).model_dump())
    log.info("started job %s (%s) from HTTP", job_id, job.name)
    return accepted(client, req, job_id)


def read_job(body: bytes, filename: str, limits: Limits):
    """The checked job of a request body, its inline images stored and its sources read."""
    store = storage.get_store()
    job = intake.read_job_body(body, filename, store, limits)
    return intake.attach_images(job, store, limits=limits)


@bp.route(route="jobs", methods=["GET"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def list_jobs(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    try:
        top = int(req.params.get("top", "20"))
        offset = int(req.params.get("continuationToken") or "0")
        if not 1 <= top <= 200 or offset < 0:
            raise ValueError
    except ValueError:
        return problem(400, "Invalid paging", "`top` must be a whole number from 1 to 200 and "
                       "`continuationToken` a token from a previous page.")
    wanted = req.params.get("status")
    instances = [s for s in await client.get_status_all() if s.name == ORCHESTRATION]
    jobs = [job_view(s, origin(req)) for s in instances]
    if wanted:
        jobs = [job for job in jobs if job["status"] == wanted]
    jobs.sort(key=lambda job: job["createdTime"] or "", reverse=True)
    page = jobs[offset:offset + top]
    more = offset + top < len(jobs)
    return json_response({"jobs": page, "continuationToken": str(offset + top) if more else None})


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
    try:
        manifest = read_manifest(storage.get_store(), job_id)
    except (storage.BlobNotFound, ValueError):
        return problem(404, "Manifest not found",
                       f"Job {job_id!r} has no manifest yet: it is written when the job ends.")
    return json_response(manifest.model_dump(mode="json"))


@bp.route(route="jobs/{id}/images/{variant}", methods=["GET"])
@problems_on_failure
def get_image(req: func.HttpRequest) -> func.HttpResponse:
    job_id, variant_id = req.route_params["id"], req.route_params["variant"]
    store = storage.get_store()
    try:
        manifest = read_manifest(store, job_id)
    except (storage.BlobNotFound, ValueError):
        return not_found(job_id)
    entry = next((v for v in manifest.variants if v.id == variant_id), None)
    if entry is None:
        return problem(404, "Image not found", f"Job {job_id!r} has no variant {variant_id!r}.")
    if entry.status != "ok" or not entry.blob:
        # Blocked and unchecked images stay in quarantine: the API never serves them.
        return problem(404, "Image not published", f"Variant {variant_id!r} is {entry.status}: it has no published image.")
    data = store.get(entry.blob)
    return func.HttpResponse(data, mimetype=storage.guess_content_type(entry.blob))


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
    if runtime in TERMINAL:
        return problem(409, "Job already ended", f"Job {job_id!r} is {job_state(runtime, status.output)}: "
                       "only queued or running jobs can be cancelled.")
    # Not a termination: the marker stops the job's GPU work at its next diffusion step,
    # and the event lets the orchestration collect what was made and write the manifest.
    store = storage.get_store()
    await asyncio.to_thread(store.put, storage.cancel_marker_ref(job_id), b"cancelled by user\n")
    await client.raise_event(job_id, "cancel", {"by": "user"})
    return json_response({"id": job_id, "status": "cancelling"}, status=202)


def is_job_id(job_id: str) -> bool:
    """Whether `job_id` could name an instance: `.` and `..` (also sent as `%2e`) cannot,
    and the durable client mistakes them for the instances collection."""
    return job_id.strip(".") != "" and "/" not in job_id


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


def job_state(runtime: str, output) -> str:
    if runtime == "Completed":
        return (output or {}).get("status", "completed") if isinstance(output, dict) else "completed"
    return JOB_STATES.get(runtime, runtime.lower())


def job_view(status, base: str) -> dict:
    """What a user sees of a job: its state, progress, and when done its summary."""
    runtime = status.runtime_status.value if status.runtime_status else "Pending"
    request = status.input_ if isinstance(status.input_, dict) else _json(status.input_)
    output = status.output if isinstance(status.output, dict) or status.output is None else _json(status.output)
    job = (request or {}).get("job", {})
    view = {
        "id": status.instance_id,
        "name": job.get("name", ""),
        "source": (request or {}).get("source", ""),
        "origin": (request or {}).get("origin", ""),
        "status": job_state(runtime, output),
        "runtimeStatus": runtime,
        "createdTime": status.created_time.isoformat() if status.created_time else None,
        "lastUpdatedTime": status.last_updated_time.isoformat() if status.last_updated_time else None,
        "progress": status.custom_status,
        "links": {"self": f"{base}/api/jobs/{status.instance_id}",
                  "manifest": f"{base}/api/jobs/{status.instance_id}/manifest",
                  "cancel": f"{base}/api/jobs/{status.instance_id}/cancel"},
    }
    if runtime == "Completed" and isinstance(output, dict):
        view["summary"] = output
        view["manifestUrl"] = output.get("manifest_url")
    elif runtime == "Failed":
        view["error"] = status.output
    return view


def _json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
