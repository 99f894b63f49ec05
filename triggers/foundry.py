"""`POST /api/images/generations`: the Azure AI Foundry images body, answered synchronously when quick.

The body (`prompt`, `negative_prompt`, `image_prompt{image, strength}`, `size`,
`output_format`, `seed`) becomes an ordinary job; OpenAI's own fields (`response_format`,
`quality`, `style`, `user`, ...) are checked against OpenAI's values and otherwise ignored. When it finishes within
`?timeout=` seconds (default 120, at most 230, under the platform's HTTP limit) the answer
is 200 in both shapes at once: Foundry's Stability models' `{"image", "finish_reason",
"seed"}` (the first image) and OpenAI's `{"created", "data": [{"b64_json", ...}]}`;
otherwise 202 with the status URLs to poll. With `IMAGEGEN_API_KEY` set the route takes
that key as those clients send it (see `triggers.api_key`).

`POST /api/images/edits` is OpenAI's `images.edit`: multipart `image` + `mask` + `prompt`
(and the generations body's other fields as text), read by `imagegen.jobs.foundry_edits`
(OpenAI's transparent-is-edited mask becomes ours, white-is-repainted), a masked job made of
it, answered as generations are.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time

import azure.durable_functions as df
import azure.functions as func

from imagegen.core import blob_names
from imagegen.core.documents import load_json
from imagegen.core.limits import Limits
from imagegen.core.types import JobValidationError
from imagegen.jobs import intake
from imagegen.jobs.foundry_body import body_errors, job_from_foundry
from imagegen.jobs.foundry_edits import edit_errors, edit_mask, foundry_body_of_edit, read_multipart
from imagegen.jobs.spec import with_mask, with_source_image
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from imagegen.storage.blobs import guess_content_type
from imagegen.storage.manifests import read_manifest
from triggers import api_key
from triggers.api_models import FoundryAccepted, FoundryResponse
from triggers.jobs import TERMINAL, job_state, origin, start_job
from triggers.responses import invalid_job, json_response, problem, problems_on_failure

bp = df.Blueprint()

POLL_SECONDS = 0.5
FINISH_POLL_SECONDS = 0.01  # between the manifest being written and the orchestration's end...
FINISH_POLL_WINDOW = 1.0  # ...which takes milliseconds; a job that goes on (review) is polled as before
# How long the route waits for the images before answering 202: long, because Foundry and
# OpenAI clients expect the image in the answer; below the platform's 230 s HTTP limit.
DEFAULT_WAIT_SECONDS = 120
RETRY_AFTER_SECONDS = 30


# Read once, as the app is indexed: the route's auth level depends on it (check_settings
# has the same rule for the value). Without a deployment key the route keeps function keys
# even with sign-in on: sign-in does not guard it (its clients send no Entra token).
DEPLOYMENT_KEY = current().settings.api_key


@bp.route(route="images/generations", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS if DEPLOYMENT_KEY else func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def generate_images_sync(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    return await answer_generation(req, client)


@bp.route(route="image/generations", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS if DEPLOYMENT_KEY else func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def generate_image_sync(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The route as Foundry's Stability document spells it (`image`, singular): the same body and answer."""
    return await answer_generation(req, client)


@bp.route(route="images/edits", methods=["POST"],
          auth_level=func.AuthLevel.ANONYMOUS if DEPLOYMENT_KEY else func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def edit_images_sync(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """OpenAI's `images.edit` (multipart `image` + `mask` + `prompt`): a masked job, answered
    with the same body as generations."""
    if DEPLOYMENT_KEY and not api_key.holds_key(req, DEPLOYMENT_KEY):
        return api_key.unauthorized()
    timeout = wait_seconds(req)
    if timeout is None:
        return problem(400, "Invalid timeout", "`timeout` must be a number of seconds from 0 to 230.")
    limits = Limits.from_settings(current().settings)
    try:
        # Off the host's event loop: parsing and decoding images takes a while.
        texts, files = await asyncio.to_thread(read_multipart, req.get_body(), req.headers.get("content-type", ""),
                                               limits)
        body = foundry_body_of_edit(texts, files)
        mask = await asyncio.to_thread(edit_mask, files, limits)
        job_id, _ = await start_job(client, lambda store, limits: read_edit_job(body, mask, store, limits),
                                    source="http", rename=body_errors)
    except JobValidationError as error:
        return invalid_job(edit_errors(error.errors))
    return await answer_when_ended(req, client, job_id, timeout, links=body.get("response_format") == "url")


def wait_seconds(req: func.HttpRequest) -> float | None:
    """`?timeout=`: how long to wait for the images (default 120 s); None when it is bad."""
    try:
        timeout = float(req.params.get("timeout", str(DEFAULT_WAIT_SECONDS)))
    except ValueError:
        return None
    return timeout if 0 <= timeout <= 230 else None


async def answer_generation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start the job of a Foundry / OpenAI body; answer with its images when they are made in time."""
    if DEPLOYMENT_KEY and not api_key.holds_key(req, DEPLOYMENT_KEY):
        return api_key.unauthorized()
    timeout = wait_seconds(req)
    if timeout is None:
        return problem(400, "Invalid timeout", "`timeout` must be a number of seconds from 0 to 230.")
    try:
        intake.check_body_size(req.get_body(), "body.json", Limits.from_settings(current().settings))
        # Off the host's event loop: decoding and checking an image takes a while.
        body = await asyncio.to_thread(load_json, req.get_body())
    except JobValidationError as error:
        return invalid_job(error.errors)
    except ValueError:
        return problem(400, "Invalid JSON", "The body must be a JSON object like {\"prompt\": \"a red bicycle\"}.")
    if not isinstance(body, dict):
        return problem(400, "Invalid body", "The body must be a JSON object like {\"prompt\": \"a red bicycle\"}.")
    try:
        job_id, _ = await start_job(client, lambda store, limits: read_foundry_job(body, store, limits), source="http",
                                    rename=body_errors)
    except JobValidationError as error:
        return invalid_job(error.errors)
    return await answer_when_ended(req, client, job_id, timeout, links=body.get("response_format") == "url")


async def answer_when_ended(req: func.HttpRequest, client: df.DurableOrchestrationClient, job_id: str,
                            timeout: float, *, links: bool) -> func.HttpResponse:
    """The images when the job ends within `timeout` seconds, else 202 with where to follow it;
    `links`: OpenAI's `response_format: url`."""
    status = await wait_until_ended(client, job_id, timeout)
    if not status or status.runtime_status.value not in TERMINAL:
        return still_running(req, job_id)
    return finished(current().store, job_id, status, image_base=f"{origin(req)}/api/jobs/{job_id}/images" if links else None)


def still_running(req: func.HttpRequest, job_id: str) -> func.HttpResponse:
    """202 with where to follow the job. Not the durable check-status payload: its URLs
    carry the extension's system key, which a caller holding only the deployment key must
    not get."""
    job_url = f"{origin(req)}/api/jobs/{job_id}"
    return json_response(FoundryAccepted(id=job_id, jobId=job_id, jobUrl=job_url, status="running").model_dump(), status=202,
                         headers={"Location": job_url, "Retry-After": "5"})


async def wait_until_ended(client: df.DurableOrchestrationClient, job_id: str, timeout: float):
    """The job's status once it has ended, or its last status when `timeout` passes first.

    Woken the moment this process writes the job's manifest; the orchestration ends right
    after it, so the status is then asked every 10 ms (for at most a second). Where another
    replica ran the job, no notice comes and this is a poll every 0.5 s.
    """
    deadline = time.monotonic() + timeout
    written_at = None
    status = await client.get_status(job_id)
    while (not status or status.runtime_status.value not in TERMINAL) and time.monotonic() < deadline:
        left = max(0.0, deadline - time.monotonic())
        if written_at is None:
            if await current().job_events.wait_for_manifest(job_id, min(POLL_SECONDS, left)):
                written_at = time.monotonic()
        elif time.monotonic() - written_at < FINISH_POLL_WINDOW:
            await asyncio.sleep(FINISH_POLL_SECONDS)
        else:
            await asyncio.sleep(min(POLL_SECONDS, left))
        status = await client.get_status(job_id)
    return status


def read_foundry_job(body: dict, store: storage.BlobStore, limits: Limits):
    """The checked job of a Foundry body, its source image (if any) stored under inputs/."""
    job, source = job_from_foundry(body, limits, model_names=current().models.names())
    if source is not None:
        ref = blob_names.input_ref(f"foundry-{hashlib.sha256(source).hexdigest()[:16]}.png")
        store.put(ref, source)
        job = with_source_image(job, ref)
    return job


def read_edit_job(body: dict, mask: bytes | None, store: storage.BlobStore, limits: Limits):
    """The checked job of an edit: its image stored as a Foundry source is, its mask (ours:
    white repaints) beside it under inputs/."""
    job = read_foundry_job(body, store, limits)
    if mask is not None:
        ref = blob_names.input_ref(f"foundry-mask-{hashlib.sha256(mask).hexdigest()[:16]}.png")
        store.put(ref, mask)
        job = with_mask(job, ref)
    return job


def finished(store: storage.BlobStore, job_id: str, status, image_base: str | None = None) -> func.HttpResponse:
    """The images in both shapes; with `image_base` (OpenAI's `response_format: url`) each
    also has its URL under the jobs API."""
    output = status.output if isinstance(status.output, dict) else json.loads(status.output or "null")
    state = job_state(status.runtime_status.value, output)
    if state not in ("completed", "partial", "rejected"):
        return problem(500 if state == "failed" else 409, f"Job {state}", f"Job {job_id!r} ended {state}.", jobId=job_id)
    manifest = read_manifest(store, job_id)
    data = [
        {"b64_json": base64.b64encode(store.get(v.blob)).decode("ascii"), "seed": v.seed,
         "revised_prompt": v.prompt, "content_type": guess_content_type(v.blob)}
        for v in manifest.variants if v.status == "ok" and v.blob
    ]
    if not data:
        return nothing_made(manifest, job_id)
    if image_base:
        published = [v for v in manifest.variants if v.status == "ok" and v.blob]
        for item, variant in zip(data, published):
            item["url"] = f"{image_base}/{variant.id}"
    answer = FoundryResponse(
        # Foundry (Stable Diffusion 3.5, Stable Image Core/Ultra): the first image.
        image=data[0]["b64_json"], finish_reason="SUCCESS", seed=data[0]["seed"],
        # OpenAI images API: every image.
        created=int(manifest.finished_at.timestamp()), data=data,
        jobId=job_id,
    )
    return json_response(answer.model_dump(mode="json", exclude_none=True))


def nothing_made(manifest, job_id: str) -> func.HttpResponse:
    """Why no image came back, as the status a client can act on; the causes never mix.

    A failure of ours (generation failed on every try) is 502; an image we could not check
    (the safety service is down) is 503 with Retry-After; only when the safety checks
    blocked every image is it Azure OpenAI's 400 `content_filter`.
    """
    statuses = {variant.status for variant in manifest.variants}
    if "failed" in statuses:
        return problem(502, "Generation failed", "The image could not be generated; try again later.",
                       code="generation_failed", jobId=job_id)
    if "unchecked" in statuses:
        response = problem(503, "Safety check unavailable",
                           "The image could not be checked for safety, so it was not published; try again later.",
                           code="safety_unavailable", jobId=job_id)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    reasons = manifest.reasons or [f"{v.id}: {v.status}" for v in manifest.variants]
    return problem(400, "Content blocked", "No image passed the safety checks: " + "; ".join(reasons),
                   code="content_filter", jobId=job_id)
