"""BlobTriggerPoller against a real Azurite, run in process with a recording `invoke`."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient

from devhost.azurite import connection_string, free_port
from devhost.blob_triggers import (
    POISON_QUEUE,
    RECEIPTS_CONTAINER,
    BlobTriggerError,
    BlobTriggerPoller,
    Receipt,
    ReceiptStore,
    decode_poison_message,
    parse_blob_path,
)
from tests.devhost.conftest import Poller
from tests.waiting import wait_until_async

FAST = 0.1   # poll interval for tests; the host's default is 1 s
MARKER = "zz-marker-"   # blobs a test drops to see the poller list a container again; they sort last


class Recorder:
    """An `invoke` that records what each call received; optionally fails (except on markers) or holds calls."""

    def __init__(self, fail: bool = False):
        self.calls: list[dict] = []
        self.fail = fail
        self.hold: asyncio.Event | None = None

    async def __call__(self, function: str, inputs: dict) -> None:
        stream = inputs["blob"]
        self.calls.append({"function": function, "name": stream.name, "uri": stream.uri,
                           "length": stream.length, "data": stream.read(),
                           "etag": stream.blob_properties["ETag"]})
        if self.hold is not None:
            await self.hold.wait()
        if self.fail and MARKER not in stream.name:
            raise RuntimeError("this function always fails")

    async def wait_for(self, count: int, timeout: float = 5) -> list[dict]:
        return await wait_until_async(lambda: list(self.calls), lambda calls: len(calls) >= count, timeout=timeout,
                                      interval=0.01, what=f"{count} calls")

    def real(self) -> list[dict]:
        """The calls, less those for markers."""
        return [call for call in self.calls if MARKER not in call["name"]]


async def after_another_poll(storage, calls: Recorder, *containers: str) -> None:
    """Drop a marker blob into each container and wait until it is delivered.

    The poller lists a container in name order and starts one task per blob, in that order,
    before the marker's (which sorts last); tasks take the concurrency slots first come, first
    served, and are let finish when the poller stops. So once a marker is delivered, anything
    that listing was going to do with the blobs already there (a redelivery, say) has begun,
    and will be in `calls` once the poller has stopped: no sleeping while nothing happens.
    """
    markers = [f"{container}/{MARKER}{uuid.uuid4().hex[:8]}.json" for container in containers]
    for marker in markers:
        await asyncio.to_thread(put, storage, *marker.split("/", 1), b"{}")
    await wait_until_async(lambda: {call["name"] for call in calls.calls},
                           lambda delivered: set(markers) <= delivered, timeout=5, interval=0.01,
                           what=f"the markers {markers} to be delivered")


@pytest.fixture
def storage(storage_connection_string):
    with BlobServiceClient.from_connection_string(storage_connection_string) as client:
        yield client


@pytest.fixture
def container(storage):
    name = f"drop-{uuid.uuid4().hex[:12]}"
    storage.create_container(name)
    return name


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_poller(storage_connection_string, functions, invoke, **options) -> BlobTriggerPoller:
    bindings = [(name, {"type": "blobTrigger", "name": "blob", "path": path, "connection": "Storage"})
                for name, path in functions]
    settings = {"Storage": storage_connection_string, "AzureWebJobsStorage": storage_connection_string}
    return BlobTriggerPoller(bindings, settings.__getitem__, invoke, poll_interval=FAST, **options)


def put(storage, container: str, name: str, data: bytes) -> str:
    return storage.get_blob_client(container, name).upload_blob(data, overwrite=True)["etag"]


async def receipt_of(storage, function: str, container: str, blob: str) -> Receipt | None:
    """What the host's receipt (in storage) says of `function` and `blob`."""
    receipts = await asyncio.to_thread(ReceiptStore(storage, "devhost").load, function)
    return receipts.get((container, blob))


def test_new_changed_and_restarted(storage, storage_connection_string, container):
    function = unique("on_drop")
    first_etag = put(storage, container, "jobs/a.json", b'{"v": 1}')   # there before the host starts

    async def scenario():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], calls)):
            await calls.wait_for(1)
            await after_another_poll(storage, calls, container)   # the same version is not redelivered
            second_etag = await asyncio.to_thread(put, storage, container, "jobs/a.json", b'{"v": 2, "x": 1}')
            await wait_until_async(lambda: len(calls.real()), lambda count: count >= 2, timeout=5, interval=0.01,
                                   what="the second version to be delivered")
            await after_another_poll(storage, calls, container)
        restarted = Recorder()
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], restarted)):
            await after_another_poll(storage, restarted, container)   # receipts are kept across restarts
        return calls.real(), second_etag, restarted.real()

    calls, second_etag, after_restart = asyncio.run(scenario())
    assert [(c["name"], c["length"], c["data"], c["etag"]) for c in calls] == [
        (f"{container}/jobs/a.json", 8, b'{"v": 1}', first_etag),
        (f"{container}/jobs/a.json", 16, b'{"v": 2, "x": 1}', second_etag),
    ]
    assert calls[0]["uri"] == storage.get_blob_client(container, "jobs/a.json").url
    assert after_restart == []
    receipt = storage.get_blob_client(
        RECEIPTS_CONTAINER, f"blobreceipts/devhost/{function}/{container}/jobs/a.json").get_blob_properties()
    assert receipt.metadata["etag"] == second_etag


def test_failing_function_is_tried_five_times_then_poisoned(storage, storage_connection_string, container):
    function = unique("always_fails")
    etag = put(storage, container, "bad.txt", b"boom")

    async def scenario():
        calls = Recorder(fail=True)
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], calls,
                                      retry_delay=0.01)):
            await calls.wait_for(5)
            # Poisoned is the last thing the poller records: then no attempt is left to make.
            await wait_until_async(lambda: receipt_of(storage, function, container, "bad.txt"),
                                   lambda found: found is not None and found.outcome == "poisoned", timeout=5,
                                   interval=0.01, what="bad.txt to be poisoned")
            await after_another_poll(storage, calls, container)
        restarted = Recorder(fail=True)
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], restarted)):
            await after_another_poll(storage, restarted, container)
        return calls.real(), restarted.real()

    calls, after_restart = asyncio.run(scenario())
    assert len(calls) == 5
    assert after_restart == []
    with QueueClient.from_connection_string(storage_connection_string, POISON_QUEUE) as queue:
        messages = [decode_poison_message(m.content) for m in queue.peek_messages(max_messages=32)]
    ours = [m for m in messages if m["FunctionId"] == f"Host.Functions.{function}"]
    assert ours == [{"Type": "BlobTrigger", "FunctionId": f"Host.Functions.{function}", "BlobType": "BlockBlob",
                     "ContainerName": container, "BlobName": "bad.txt", "ETag": etag}]


def test_patterns_pick_their_blobs_and_functions_share_containers(storage, storage_connection_string, container):
    other = f"other-{uuid.uuid4().hex[:12]}"
    storage.create_container(other)
    for name in ("a.json", "b.txt", "sub/c.json"):
        put(storage, container, name, b"{}")
    put(storage, other, "z.json", b"{}")
    json_only, everything, elsewhere = unique("json_only"), unique("everything"), unique("elsewhere")
    functions = [(json_only, f"{container}/{{name}}.json"), (everything, container),
                 (elsewhere, f"{other}/{{name}}")]

    async def scenario():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, functions, calls)):
            await calls.wait_for(6)
            await after_another_poll(storage, calls, container, other)
        return calls.real()

    delivered = sorted((c["function"], c["name"]) for c in asyncio.run(scenario()))
    assert delivered == sorted([
        (json_only, f"{container}/a.json"), (json_only, f"{container}/sub/c.json"),
        (everything, f"{container}/a.json"), (everything, f"{container}/b.txt"),
        (everything, f"{container}/sub/c.json"), (elsewhere, f"{other}/z.json"),
    ])


def test_blob_deleted_before_processing_is_skipped(storage, storage_connection_string, container, caplog):
    put(storage, container, "one.txt", b"1")
    put(storage, container, "two.txt", b"2")
    function = unique("slow")

    async def scenario():
        calls = Recorder()
        calls.hold = asyncio.Event()
        # One invocation at a time: the second blob waits while the first is held.
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], calls,
                                      max_concurrency=1)):
            await calls.wait_for(1)
            waiting = "two.txt" if calls.calls[0]["name"].endswith("one.txt") else "one.txt"
            await asyncio.to_thread(storage.get_blob_client(container, waiting).delete_blob)
            calls.hold.set()
            # One slot: the marker's call comes after the deleted blob's turn, which is skipped.
            await after_another_poll(storage, calls, container)
        return calls.real()

    with caplog.at_level(logging.WARNING, logger="devhost.blob"):
        calls = asyncio.run(scenario())
    assert len(calls) == 1
    assert caplog.records == []


def test_storage_outage_is_logged_and_survived(storage, storage_connection_string, caplog):
    down = connection_string(blob_port=free_port(), queue_port=free_port(), table_port=free_port())
    late = f"late-{uuid.uuid4().hex[:12]}"

    async def scenario():
        calls = Recorder()
        async with Poller(BlobTriggerPoller(
                [("on_down", {"type": "blobTrigger", "name": "blob", "path": "drop/{name}", "connection": "Down"}),
                 ("on_late", {"type": "blobTrigger", "name": "blob", "path": f"{late}/{{name}}", "connection": "Up"})],
                {"Down": down, "Up": storage_connection_string,
                 "AzureWebJobsStorage": storage_connection_string}.__getitem__, calls, poll_interval=FAST)):
            # Two failed polls of `drop`: the poll between them has listed `late`, which does not
            # exist yet (nothing to do, and no error).
            await wait_until_async(lambda: [r for r in caplog.records if "cannot read container drop" in r.getMessage()],
                                   lambda failures: len(failures) >= 2, timeout=10, interval=0.01,
                                   what="two failed polls of the container that is down")
            await asyncio.to_thread(storage.create_container, late)
            await asyncio.to_thread(put, storage, late, "x.json", b"{}")
            await calls.wait_for(1)
        return calls.calls

    with caplog.at_level(logging.WARNING, logger="devhost.blob"):
        calls = asyncio.run(scenario())
    assert [c["name"] for c in calls] == [f"{late}/x.json"]
    assert not [r.getMessage() for r in caplog.records if late in r.getMessage()]


def test_path_patterns():
    path = parse_blob_path("prompts/{name}.{ext}")
    assert path.match("a.b.json") == {"name": "a.b", "ext": "json"}
    assert path.match("noext") is None
    assert parse_blob_path("prompts/in/{name}").match("in/sub/x") == {"name": "sub/x"}
    assert parse_blob_path("prompts/in/{name}").match("out/x") is None


@pytest.mark.parametrize("path, message", [
    ("Prompts/{name}", "container `Prompts` must be 3-63 lowercase letters"),
    ("{dir}/{name}", "container `{dir}` must be 3-63 lowercase letters"),
    ("prompts/{na me}", "placeholder `{na me}` must be a name"),
    ("prompts/{name}/{name}", "placeholder `{name}` appears twice"),
    ("prompts/{name", "has an unmatched brace"),
    ("", "`path` must be `container/pattern`"),
])
def test_bad_paths_name_the_function_and_the_path(path, message):
    with pytest.raises(BlobTriggerError) as caught:
        BlobTriggerPoller([("on_drop", {"type": "blobTrigger", "name": "blob", "path": path})],
                          lambda _: connection_string(), Recorder())
    assert str(caught.value).startswith("blob trigger `on_drop`: ")
    assert message in str(caught.value)


def test_missing_connection_setting_is_named():
    def settings(name):
        raise KeyError(f"app setting `{name}` is not set")

    with pytest.raises(BlobTriggerError, match="blob trigger `on_drop`: `connection` 'Missing': app setting `Missing` is not set"):
        BlobTriggerPoller([("on_drop", {"type": "blobTrigger", "name": "blob", "path": "prompts/{name}",
                                        "connection": "Missing"})], settings, Recorder())


def test_restart_mid_retry_continues_the_count(storage, storage_connection_string, container):
    function = unique("fails_again")
    etag = put(storage, container, "flaky.txt", b"x")
    # A host stopped after the third failed attempt left this receipt behind.
    ReceiptStore(storage, "devhost").save(function, container, "flaky.txt", Receipt(etag, 3, "retrying"))

    async def scenario():
        calls = Recorder(fail=True)
        async with Poller(make_poller(storage_connection_string, [(function, f"{container}/{{name}}")], calls,
                                      retry_delay=0.01)):
            await calls.wait_for(2)
            poisoned = await wait_until_async(lambda: receipt_of(storage, function, container, "flaky.txt"),
                                              lambda found: found is not None and found.outcome == "poisoned",
                                              timeout=5, interval=0.01, what="flaky.txt to be poisoned")
            await after_another_poll(storage, calls, container)
        return calls.real(), poisoned

    calls, poisoned = asyncio.run(scenario())
    assert len(calls) == 2
    assert (poisoned.attempts, poisoned.outcome) == (5, "poisoned")
