"""The sample app's blob and timer triggers through a real `python -m devhost start` process.

Observed from outside only: storage (receipts) and the effects files the sample functions
write (the poison queue through `record_poison`, the function it triggers).
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from tests.waiting import wait_until


@pytest.fixture(scope="module")
def storage(storage_connection_string):
    with BlobServiceClient.from_connection_string(storage_connection_string) as client:
        for container in ("devhost-drop", "devhost-poison"):
            try:
                client.create_container(container)
            except ResourceExistsError:
                pass
        yield client


def eventually(check, timeout: float, what: str, host):
    """Wait for `check()` to return something truthy; fail with the host log."""
    return wait_until(check, timeout=timeout, what=what, context=lambda: host.log()[-4000:])


def after_two_more_polls(host, storage) -> None:
    """Drop a new blob and wait for the host to handle it, twice. The first shows the host has
    listed `devhost-drop` again (and so seen every blob already there); the second, dropped
    after the first was handled, that whatever that listing started has had a poll's time to run."""
    for _ in range(2):
        marker = f"marker-{uuid.uuid4().hex[:8]}.json"
        storage.get_blob_client("devhost-drop", marker).upload_blob(b"{}")
        eventually(lambda: read_json(storage, "devhost-receipts", f"{marker}.json"), 10, f"a receipt for {marker}", host)


def read_json(storage, container: str, name: str):
    try:
        return json.loads(storage.get_blob_client(container, name).download_blob().readall())
    except ResourceNotFoundError:
        return None


def test_dropped_blob_is_delivered_once(devhost, storage):
    name = f"job-{uuid.uuid4().hex[:8]}.json"
    data = json.dumps({"prompt": "a lighthouse"}).encode()
    storage.get_blob_client("devhost-drop", name).upload_blob(data)

    receipt = eventually(lambda: read_json(storage, "devhost-receipts", f"{name}.json"), 10,
                         f"a receipt for {name}", devhost)
    assert receipt["name"] == f"devhost-drop/{name}"
    assert (receipt["length"], receipt["bytes_read"]) == (len(data), len(data))
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest()
    assert receipt["uri"].endswith(f"/devhost-drop/{name}")
    # The function writes its effects line after the receipt.
    lines = eventually(lambda: [line for line in devhost.effects("drops") if line.startswith(name)], 10,
                       f"the effects line of {name}", devhost)
    assert lines == [f"{name} {receipt['sha256']}"]
    after_two_more_polls(devhost, storage)
    assert (devhost.effects_dir / f"drop-{name}.attempts").read_text() == "x"  # delivered once, not again


def test_failing_blob_goes_to_the_poison_queue_after_five_tries_and_its_queue_trigger_gets_it(devhost, storage):
    name = f"bad-{uuid.uuid4().hex[:8]}.txt"
    storage.get_blob_client("devhost-poison", name).upload_blob(b"nope")

    # `record_poison`, triggered by webjobs-blobtrigger-poison, gets the message devhost wrote.
    lines = eventually(lambda: [line for line in devhost.effects("poisoned") if f"/{name} " in line], 15,
                       f"the poison message for {name} to reach record_poison", devhost)
    assert lines == [f"devhost-poison/{name} Host.Functions.always_fails 1"]
    attempts = devhost.effects_dir / f"poison-{name}.attempts"
    assert attempts.read_text() == "x" * 5


def test_timer_ticks_every_two_seconds(devhost):
    ticks = eventually(lambda: len(devhost.effects("ticks")) >= 2 and devhost.effects("ticks"), 8,
                       "two timer ticks", devhost)
    assert all(line.endswith("past_due=False") for line in ticks)
