"""Blob drop: a file dropped into the `prompts` container starts a job.

`*.json`, `*.yaml` and `*.yml` are job specs; `*.txt` is one prompt per line with
default settings; images (`*.png`, `*.jpg`, ...) are sources that job files name and
start nothing themselves. The job id comes from the blob's name and content, so a blob
delivered twice, or uploaded again unchanged, never runs twice; a changed file runs again.

Nothing dropped is lost: a file that cannot be run is moved to `prompts-rejected/` with
`NAME.error.json` beside it saying why. That covers a file the checks refuse (at once), and
one `drop_job` failed on every try the host allows (5): the Functions host then puts a
message naming the blob on its `webjobs-blobtrigger-poison` queue, as Azure's does and
devhost's does, and `move_poisoned_drop`, triggered by that queue, moves the file aside
with a report that says what failed.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import azure.durable_functions as df
import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegen.core import blob_names
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs import intake
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from triggers.jobs import start_job

bp = df.Blueprint()
log = logging.getLogger(__name__)

DROP_CONTAINER = "prompts"
# Where the Functions host (Azure's, and devhost) puts a message naming a blob whose
# blob-trigger function failed on every try, in the host's storage account.
POISON_QUEUE = "webjobs-blobtrigger-poison"
# Tries before the host gives up on a blob: the Storage extension's `maxDequeueCount`, which
# host.json leaves at its default.
HOST_TRIES = 5


@bp.blob_trigger(arg_name="blob", path="prompts/{name}", connection="AzureWebJobsStorage")
@bp.durable_client_input(client_name="client")
async def drop_job(blob: func.InputStream, client: df.DurableOrchestrationClient) -> None:
    assert blob.name is not None  # a triggering blob always has its name
    name = blob.name.removeprefix("prompts/")
    ref = f"prompts/{name}"
    if name.lower().endswith(intake.IMAGE_SUFFIXES):
        log.info("%r is a source image for jobs; it starts nothing by itself", ref)
        return
    try:
        await run_dropped_file(client, name)
    except Exception:
        # The host tries again, up to HOST_TRIES times; after the last, the poison queue
        # brings the file to move_poisoned_drop. The log keeps what failed, by file.
        log.exception("drop_job failed on %r; the host will try again, then move it aside", ref)
        raise


async def run_dropped_file(client: df.DurableOrchestrationClient, name: str) -> None:
    """Start the job of `prompts/{name}`, or move the file aside naming what is wrong with it."""
    ref = f"prompts/{name}"
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
    except (RecursionError, MemoryError) as error:
        # The file, not us: the checks measure depth and size first, so only what a file
        # holds gets this far; moved aside at once rather than tried five times.
        problem = "nests too deeply" if isinstance(error, RecursionError) else "needs too much memory"
        reject(store, name, data, [FieldError(path="file", rule="unreadable", message=(
            f"`{ref}` {problem} to be read as a job; make it smaller and flatter"))])


class PoisonedBlob(BaseModel):
    """The message the Functions host puts on `webjobs-blobtrigger-poison` (the WebJobs SDK's
    `BlobTriggerMessage`): which function gave up on which version of which blob."""

    model_config = ConfigDict(extra="ignore")  # and `Type`, `BlobType`

    function_id: str = Field(alias="FunctionId")  # `Host.Functions.drop_job`
    container: str = Field(alias="ContainerName")
    blob_name: str = Field(alias="BlobName")
    etag: str | None = Field(None, alias="ETag")

    @property
    def function(self) -> str:
        return self.function_id.rsplit(".", 1)[-1]


@bp.queue_trigger(arg_name="message", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def move_poisoned_drop(message: func.QueueMessage) -> None:
    """A dropped file `drop_job` failed on every try: moved aside with a report, unless it
    has gone or been uploaded again since (the new version is the trigger's to run)."""
    try:
        poisoned = PoisonedBlob.model_validate_json(message.get_body())
    except ValidationError:
        log.error("%s: message %s is no blob trigger's poison message; dropped", POISON_QUEUE, message.id)
        return
    if poisoned.function != "drop_job" or poisoned.container != DROP_CONTAINER:
        # This app is its storage account's only app, and drop_job its only blob trigger.
        log.error("%s: %s gave up on %s/%s; not a drop, so not moved", POISON_QUEUE, poisoned.function_id,
                  poisoned.container, poisoned.blob_name)
        return
    name, ref = poisoned.blob_name, f"{DROP_CONTAINER}/{poisoned.blob_name}"
    store = current().store
    try:
        data, etag = store.get_dropped_version(name)
    except storage.BlobNotFound:
        log.info("%r gave up on by drop_job is gone already (moved aside or deleted)", ref)
        return
    if poisoned.etag and etag.strip('"') != poisoned.etag.strip('"'):
        log.info("%r was uploaded again after drop_job gave up on it; the new version is run as usual", ref)
        return
    reject(store, name, data, [FieldError(path="file", rule="poison", message=(
        f"`drop_job` failed on `{ref}` every time the host tried it ({HOST_TRIES} times) and was "
        "given up on: a failure while running it, not a rule the file breaks (those are named "
        "at once). What failed is in the app's log under the file's name; drop the file "
        "again to try once more"))], etag=etag)


def reject(store: storage.BlobStore, name: str, data: bytes, errors: list[FieldError],
           etag: str | None = None) -> None:
    """Move the file `prompts/{name}` to prompts-rejected/ with an error report beside it, copy
    first. A name the store cannot address as it is, or that holds a `%`, goes there
    percent-encoded (`blob_names.clean_name`: two names never share one). With `etag`, the
    original is deleted only if it is still that version."""
    ref = f"prompts/{name}"
    aside = blob_names.clean_name(name)
    report = {
        "file": ref,
        "rejectedAt": datetime.now(timezone.utc).isoformat(),
        "errors": [error.model_dump() for error in errors],
    }
    store.put(blob_names.rejected_error_ref(aside), json.dumps(report, indent=2).encode(), "application/json")
    store.put(blob_names.rejected_ref(aside), data)
    if not store.delete_dropped(name, etag):
        log.info("%r changed while it was moved aside; the new version stays to be run", ref)
    log.warning("rejected %r: %s", ref, "; ".join(error.message for error in errors))
