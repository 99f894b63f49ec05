"""Blob drop: a file dropped into the `prompts` container starts a job.

`*.json`, `*.yaml` and `*.yml` are job specs; `*.txt` is one prompt per line with
default settings; images (`*.png`, `*.jpg`, ...) are sources that job files name and
start nothing themselves. The job id comes from the blob's name and content, so a blob
delivered twice, or uploaded again unchanged, never runs twice; a changed file runs again. A file that cannot be
processed is moved to `prompts-rejected/` with `NAME.error.json` beside it: nothing is lost.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import azure.durable_functions as df
import azure.functions as func

from imagegen.core import blob_names
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs import intake
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from triggers.jobs import start_job

bp = df.Blueprint()
log = logging.getLogger(__name__)


@bp.blob_trigger(arg_name="blob", path="prompts/{name}", connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def drop_job(blob: func.InputStream, client: df.DurableOrchestrationClient) -> None:
    assert blob.name is not None  # a triggering blob always has its name
    name = blob.name.removeprefix("prompts/")
    ref = f"prompts/{name}"
    if name.lower().endswith(intake.IMAGE_SUFFIXES):
        log.info("%r is a source image for jobs; it starts nothing by itself", ref)
        return
    store = current().store
    try:
        data = store.get_dropped(name)  # the current version: the one we act on
    except storage.BlobNotFound:
        log.info("%r was deleted before it could be read", ref)
        return
    try:
        blob_names.check_path(name)
    except ValueError as error:
        # A name no job, image link or API route could address: moved aside, not run.
        reject(store, name, data, [FieldError(path="name", rule="blob_name", message=str(error))])
        return
    job_id = intake.drop_job_id(name, data)
    if await client.get_status(job_id):
        log.info("%s (unchanged) already started job %s", ref, job_id)
        return

    try:
        await start_job(client, lambda store, limits: intake.read_job_file(data, name, limits, current().settings),
                        source="blob", job_id=job_id, origin=ref, images_from="prompts")
    except JobValidationError as error:
        reject(store, name, data, error.errors)


def reject(store: storage.BlobStore, name: str, data: bytes, errors: list[FieldError]) -> None:
    """Move the file `prompts/{name}` to prompts-rejected/ with an error report beside it, copy
    first. A name the store cannot address as it is goes there percent-encoded."""
    ref = f"prompts/{name}"
    aside = blob_names.clean_name(name)
    report = {
        "file": ref,
        "rejectedAt": datetime.now(timezone.utc).isoformat(),
        "errors": [error.model_dump() for error in errors],
    }
    store.put(blob_names.rejected_error_ref(aside), json.dumps(report, indent=2).encode(), "application/json")
    store.put(blob_names.rejected_ref(aside), data)
    store.delete_dropped(name)
    log.warning("rejected %r: %s", ref, "; ".join(error.message for error in errors))
