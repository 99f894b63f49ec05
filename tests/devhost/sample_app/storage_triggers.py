"""Blob, queue and timer trigger functions of the devhost test app.

- `record_drop`: every blob in `devhost-drop` gets a JSON receipt `devhost-receipts/<name>.json`
  (its length and sha256), a line in the `drops` effects file (once per content) and an `x` in
  `drop-<name>.attempts` per delivery, so tests can check both what arrived and how many times.
- `always_fails`: every blob in `devhost-poison` raises; devhost must try it 5 times, then put
  it on the `webjobs-blobtrigger-poison` queue. Attempts are counted in effects files.
- `record_poison`: triggered by that queue, as an app handles its poisoned blobs in Azure;
  a line `<container>/<blob> <FunctionId> <dequeue count>` in the `poisoned` effects file.
- `tick`: a timer every 2 s appending a line to the `ticks` effects file.
"""

import hashlib
import json
import os
from datetime import datetime, timezone

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
from effects import count_attempt, effects_dir, record_once

bp = func.Blueprint()

RECEIPTS_CONTAINER = "devhost-receipts"


def blob_name(stream: func.InputStream, container: str) -> str:
    """`InputStream.name` is `container/blob`, as in Azure."""
    return stream.name[len(container) + 1:]


@bp.blob_trigger(arg_name="blob", path="devhost-drop/{name}", connection="AzureWebJobsStorage")
def record_drop(blob: func.InputStream) -> None:
    data = blob.read()
    name = blob_name(blob, "devhost-drop")
    count_attempt(f"drop-{name}")
    receipt = {"name": blob.name, "uri": blob.uri, "length": blob.length, "bytes_read": len(data),
               "sha256": hashlib.sha256(data).hexdigest()}
    with BlobServiceClient.from_connection_string(os.environ["AzureWebJobsStorage"]) as storage:
        try:
            storage.create_container(RECEIPTS_CONTAINER)
        except ResourceExistsError:
            pass
        storage.get_blob_client(RECEIPTS_CONTAINER, f"{name}.json").upload_blob(
            json.dumps(receipt), overwrite=True)
    record_once("drops", f"{name} {receipt['sha256']}")


@bp.blob_trigger(arg_name="blob", path="devhost-poison/{name}", connection="AzureWebJobsStorage")
def always_fails(blob: func.InputStream) -> None:
    attempt = count_attempt(f"poison-{blob_name(blob, 'devhost-poison')}")
    raise RuntimeError(f"always_fails refuses {blob.name} (attempt {attempt})")


@bp.queue_trigger(arg_name="message", queue_name="webjobs-blobtrigger-poison", connection="AzureWebJobsStorage")
def record_poison(message: func.QueueMessage) -> None:
    poisoned = message.get_json()
    record_once("poisoned", f"{poisoned['ContainerName']}/{poisoned['BlobName']} {poisoned['FunctionId']} "
                            f"{message.dequeue_count}")


@bp.timer_trigger(schedule="*/2 * * * * *", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    line = f"{datetime.now(timezone.utc).isoformat()} past_due={timer.past_due}\n"
    with open(effects_dir() / "ticks.txt", "a", encoding="utf-8") as handle:
        handle.write(line)
