"""QueueTriggerPoller against a real Azurite, run in process with a recording `invoke`."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost.queue_triggers import QueueTriggerError, QueueTriggerPoller, queue_trigger
from tests.devhost.conftest import Poller
from tests.waiting import wait_until_async

FAST = 0.1   # poll interval for tests; the host's default is 1 s
MARKER = b"marker"   # a message a test sends to see the poller receive again


class Recorder:
    """An `invoke` that records each message a function got; fails as told (never on markers)."""

    def __init__(self, failures: int = 0):
        self.calls: list[dict] = []
        self.failures = failures   # how many calls fail before they succeed; -1: all of them

    async def __call__(self, function: str, inputs: dict) -> None:
        message = inputs["message"]
        body = message.get_body()
        self.calls.append({"function": function, "id": message.id, "body": body,
                           "dequeue_count": message.dequeue_count, "inserted": message.insertion_time})
        real = [call for call in self.calls if call["body"] != MARKER]
        if body != MARKER and (self.failures < 0 or len(real) <= self.failures):
            raise RuntimeError("this function fails")

    def real(self) -> list[dict]:
        return [call for call in self.calls if call["body"] != MARKER]

    async def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        return await wait_until_async(self.real, lambda calls: len(calls) >= count, timeout=timeout,
                                      interval=0.01, what=f"{count} calls")

    async def after_another_receive(self, queue: QueueClient) -> None:
        """Send a marker and wait until it is delivered: every message sent before it has
        been received by then, and anything that was going to run again has run."""
        seen = sum(1 for call in self.calls if call["body"] == MARKER)
        await asyncio.to_thread(queue.send_message, MARKER.decode())
        await wait_until_async(lambda: sum(1 for call in self.calls if call["body"] == MARKER),
                               lambda count: count > seen, timeout=10, interval=0.01, what="the marker")


@pytest.fixture
def queue_name() -> str:
    return f"work-{uuid.uuid4().hex[:12]}"


def make_poller(storage_connection_string, queue_name, invoke, **options) -> QueueTriggerPoller:
    binding = {"type": "queueTrigger", "name": "message", "queueName": queue_name, "connection": "Storage"}
    return QueueTriggerPoller([("on_message", binding)], {"Storage": storage_connection_string}.__getitem__, invoke,
                              poll_interval=FAST, **options)


def queue_client(storage_connection_string, name: str, base64_text: bool = True) -> QueueClient:
    policy = TextBase64EncodePolicy() if base64_text else None
    client = QueueClient.from_connection_string(storage_connection_string, name, message_encode_policy=policy)
    try:
        client.create_queue()
    except Exception:  # noqa: BLE001 - there already
        pass
    return client


def left_in(storage_connection_string, name: str) -> list[str]:
    """The contents of the messages in a queue (visible or not), read raw."""
    client = QueueClient.from_connection_string(storage_connection_string, name)
    try:
        return [message.content for message in client.peek_messages(max_messages=32)]
    except Exception:  # noqa: BLE001 - no such queue: nothing in it
        return []


def test_a_message_is_delivered_once_decoded_and_then_deleted(storage_connection_string, queue_name):
    queue = queue_client(storage_connection_string, queue_name)
    queue.send_message('{"job": "a"}')   # base64 on the wire, as the Functions runtime writes

    async def scenario():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, queue_name, calls)):
            await calls.wait_for(1)
            await calls.after_another_receive(queue)
        return calls.real()

    calls = asyncio.run(scenario())
    assert [(call["function"], call["body"], call["dequeue_count"]) for call in calls] == [
        ("on_message", b'{"job": "a"}', 1)]
    assert calls[0]["id"] and calls[0]["inserted"] is not None
    assert left_in(storage_connection_string, queue_name) == []


def test_a_failure_is_retried_at_once_with_the_dequeue_count_going_up(storage_connection_string, queue_name):
    queue = queue_client(storage_connection_string, queue_name)
    queue.send_message("flaky")

    async def scenario():
        calls = Recorder(failures=1)
        async with Poller(make_poller(storage_connection_string, queue_name, calls)):
            await calls.wait_for(2)
            await calls.after_another_receive(queue)
        return calls.real()

    assert [call["dequeue_count"] for call in asyncio.run(scenario())] == [1, 2]
    assert left_in(storage_connection_string, queue_name) == []


def test_a_message_failing_five_times_goes_to_the_poison_queue_as_it_was(storage_connection_string, queue_name):
    queue = queue_client(storage_connection_string, queue_name)
    queue.send_message("always bad")
    stored = left_in(storage_connection_string, queue_name)

    async def scenario():
        calls = Recorder(failures=-1)
        async with Poller(make_poller(storage_connection_string, queue_name, calls)):
            await wait_until_async(lambda: left_in(storage_connection_string, f"{queue_name}-poison"), timeout=10,
                                   interval=0.05, what="the poison message")
            await calls.after_another_receive(queue)
        return calls.real()

    calls = asyncio.run(scenario())
    assert [call["dequeue_count"] for call in calls] == [1, 2, 3, 4, 5]
    assert left_in(storage_connection_string, f"{queue_name}-poison") == stored   # base64, as sent
    assert left_in(storage_connection_string, queue_name) == []


def test_a_message_that_is_not_base64_is_never_run_and_ends_in_the_poison_queue(storage_connection_string, queue_name):
    queue = queue_client(storage_connection_string, queue_name, base64_text=False)
    queue.send_message("not base64!")

    async def scenario():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, queue_name, calls)):
            await wait_until_async(lambda: left_in(storage_connection_string, f"{queue_name}-poison"), timeout=10,
                                   interval=0.05, what="the poison message")
        return calls.real()

    assert asyncio.run(scenario()) == []
    assert left_in(storage_connection_string, f"{queue_name}-poison") == ["not base64!"]


def test_with_message_encoding_none_the_text_is_the_body(storage_connection_string, queue_name):
    queue = queue_client(storage_connection_string, queue_name, base64_text=False)
    queue.send_message("plain text, é")

    async def scenario():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, queue_name, calls, encoding="none")):
            await calls.wait_for(1)
        return calls.real()

    assert [call["body"] for call in asyncio.run(scenario())] == ["plain text, é".encode()]


def test_a_queue_that_does_not_exist_yet_is_waited_for(storage_connection_string, queue_name):
    async def scenario():
        calls = Recorder()
        poller = make_poller(storage_connection_string, queue_name, calls)
        first = await poller.poll_once()   # no queue yet: nothing to run, and no storage error
        queue = await asyncio.to_thread(queue_client, storage_connection_string, queue_name)
        await asyncio.to_thread(queue.send_message, "late")
        async with Poller(poller):
            await calls.wait_for(1)
        return first, calls.real()

    first, calls = asyncio.run(scenario())
    assert first == (True, False)
    assert [call["body"] for call in calls] == [b"late"]


@pytest.mark.parametrize("binding, message", [
    ({"queueName": ""}, "`queueName` must be 3-63 lowercase letters"),
    ({"queueName": "Work_Items"}, "got 'Work_Items'"),
    ({"queueName": "%WORK_QUEUE%"}, "names app setting 'WORK_QUEUE', which is not set"),
    ({"queueName": "work", "connection": "Elsewhere"}, "`connection` 'Elsewhere'"),
])
def test_bad_bindings_name_the_function_and_the_field(binding, message):
    def connection(setting: str) -> str:
        if setting != "AzureWebJobsStorage":
            raise KeyError(f"app setting `{setting}` is not set")
        return "UseDevelopmentStorage=true"

    with pytest.raises(QueueTriggerError, match="queue trigger `on_message`") as raised:
        queue_trigger("on_message", {"type": "queueTrigger", "name": "message", **binding}, connection, settings={})
    assert message in str(raised.value)


def test_a_queue_name_from_an_app_setting():
    trigger = queue_trigger("on_message", {"queueName": "%WORK_QUEUE%"}, lambda _: "UseDevelopmentStorage=true",
                            settings={"WORK_QUEUE": "work-items"})
    assert trigger.queue == "work-items" and trigger.binding_name == "message"


class SlowRecorder(Recorder):
    """Each call takes `seconds` (an awaitable sleep, as a long function awaits its work)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.finished = 0

    async def __call__(self, function: str, inputs: dict) -> None:
        await super().__call__(function, inputs)
        await asyncio.sleep(self.seconds)
        self.finished += 1


def test_a_function_running_longer_than_the_lease_keeps_its_message_and_runs_once(storage_connection_string,
                                                                                  queue_name):
    queue = queue_client(storage_connection_string, queue_name)
    queue.send_message("long")

    async def scenario():
        calls = SlowRecorder(seconds=3.5)  # well past a 1 s lease: renewed three times or more
        async with Poller(make_poller(storage_connection_string, queue_name, calls, lease=1)):
            await wait_until_async(lambda: calls.finished, lambda done: done >= 1, timeout=20, interval=0.05,
                                   what="the long call to finish")
            await calls.after_another_receive(queue)
        return calls.real()

    assert [call["dequeue_count"] for call in asyncio.run(scenario())] == [1]
    assert left_in(storage_connection_string, queue_name) == []


def test_the_message_of_a_poller_that_dies_mid_run_comes_back_within_its_lease(storage_connection_string,
                                                                               queue_name):
    queue = queue_client(storage_connection_string, queue_name)
    queue.send_message("interrupted")

    async def dies_mid_run():
        calls = SlowRecorder(seconds=60)
        poller = make_poller(storage_connection_string, queue_name, calls, lease=2)
        task = asyncio.create_task(poller.run(asyncio.Event()))
        await calls.wait_for(1)
        task.cancel()  # the host is gone: nobody renews the lease or deletes the message
        await asyncio.gather(task, return_exceptions=True)

    async def next_host():
        calls = Recorder()
        async with Poller(make_poller(storage_connection_string, queue_name, calls)):
            await calls.wait_for(1, timeout=10)
        return calls.real()

    asyncio.run(dies_mid_run())
    assert [(call["body"], call["dequeue_count"]) for call in asyncio.run(next_host())] == [(b"interrupted", 2)]


def test_batch_size_one_runs_one_message_at_a_time_and_a_slow_queue_never_holds_up_another(
        storage_connection_string, queue_name):
    slow_queue = queue_client(storage_connection_string, queue_name)
    quick_queue = queue_client(storage_connection_string, f"{queue_name}-quick")
    slow_queue.send_message("first")
    slow_queue.send_message("second")
    running: list[str] = []
    overlaps: list[tuple[str, str]] = []
    quick_seen_while: list[list[str]] = []
    quick_came = asyncio.Event()

    async def invoke(function: str, inputs: dict) -> None:
        if function == "quick":
            quick_seen_while.append(list(running))
            quick_came.set()
            return
        body = inputs["message"].get_body().decode()
        overlaps.extend((other, body) for other in running)
        running.append(body)
        try:  # the first slow call ends only once the quick one has run: it must not wait behind it
            await asyncio.wait_for(quick_came.wait(), timeout=15)
        finally:
            running.remove(body)

    bindings = [("slow", {"type": "queueTrigger", "name": "message", "queueName": queue_name, "connection": "S"}),
                ("quick", {"type": "queueTrigger", "name": "message", "queueName": f"{queue_name}-quick",
                           "connection": "S"})]

    async def scenario():
        poller = QueueTriggerPoller(bindings, {"S": storage_connection_string}.__getitem__, invoke,
                                    poll_interval=FAST, batch_size=1)
        async with Poller(poller):
            await wait_until_async(lambda: running, timeout=10, interval=0.05, what="the first slow call")
            await asyncio.to_thread(quick_queue.send_message, "quick")
            await wait_until_async(lambda: left_in(storage_connection_string, queue_name), lambda left: not left,
                                   timeout=30, interval=0.1, what="both slow messages to be done")

    asyncio.run(scenario())
    assert [len(seen) for seen in quick_seen_while] == [1]  # ran while a slow call was under way
    assert overlaps == []  # the slow queue's messages one at a time


def test_wake_has_every_queue_looked_at_now_rather_than_after_the_poll_interval(storage_connection_string,
                                                                                queue_name):
    queue = queue_client(storage_connection_string, queue_name)

    async def scenario():
        calls = Recorder()
        binding = {"type": "queueTrigger", "name": "message", "queueName": queue_name, "connection": "Storage"}
        poller = QueueTriggerPoller([("on_message", binding)], {"Storage": storage_connection_string}.__getitem__,
                                    calls, poll_interval=60)  # on its own, the next look is a minute away
        async with Poller(poller):
            await asyncio.to_thread(queue.send_message, MARKER.decode())
            poller.wake()
            await wait_until_async(lambda: calls.calls, timeout=10, interval=0.01, what="the marker")
            await asyncio.sleep(1)  # after the marker it looked once more, found nothing, and sleeps
            await asyncio.to_thread(queue.send_message, "sent by an activity")
            await asyncio.sleep(2)
            assert calls.real() == [], "the poll interval should hold the message back without a wake"
            poller.wake()  # as the host does when an activity ends
            await calls.wait_for(1, timeout=10)
        return calls.real()

    assert [call["body"] for call in asyncio.run(scenario())] == [b"sent by an activity"]
