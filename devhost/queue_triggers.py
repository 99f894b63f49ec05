"""Queue triggers: run each `queueTrigger` function once per message, as Azure's queue trigger does.

What we copy from Azure's Storage queues extension:
- `queueName` names a queue in the account of `connection` (an app setting; default
  `AzureWebJobsStorage`); `%SETTING%` in it is the app setting's value.
- Messages are base64 text (`extensions.queues.messageEncoding` in host.json: `base64`, the
  default, or `none`), decoded before the function sees them: it gets a `func.QueueMessage`
  with the id, body, dequeue count, insertion, expiration and next-visible times.
- Each function's queue is polled on its own; up to `extensions.queues.batchSize` (16)
  messages are taken at once and run side by side.
- A message is hidden while its function runs (a lease renewed as it runs, so a host that
  dies gives its messages back within `LEASE`, 10 s, where Azure's 10-minute lease takes
  up to 10) and deleted when the function returns.
- A function that raises gets the message again at once (the extension's default
  `visibilityTimeout` is 0); once it has been received `maxDequeueCount` times (5) and
  failed, its content goes to `<queue>-poison` as it was and it is deleted. A message that
  cannot be decoded counts as a failure.
- A queue that does not exist yet is waited for; storage errors never stop the poller.

Unlike Azure, an empty queue is asked again every `poll_interval` (1 s) rather than with a
back-off to `maxPollingInterval` (a minute), and at once when work in the host ends (`wake`:
a function of this poller, or an activity, may have sent a message): devhost is for tests
and development, where a message waiting out a poll interval is time lost.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import LinearRetry, QueueClient, QueueMessage

from devhost.storage_polling import MAX_DEQUEUE_COUNT, SDK_RETRY, STORAGE_NAME, backoff_delay, binding_connection

log = logging.getLogger("devhost.queue")

BATCH_SIZE = 16              # messages taken per receive and run at once (Azure's `batchSize` default)
LEASE = 10   # seconds a received message stays hidden; renewed every LEASE / 2 while its function runs
ENCODINGS = ("base64", "none")
_SETTING = re.compile(r"%([^%]+)%")


class QueueTriggerError(ValueError):
    """A queueTrigger binding devhost cannot run; names the function, the field and the value."""


@dataclass(frozen=True)
class QueueTrigger:
    function: str
    binding_name: str
    queue: str
    connection: str      # the resolved connection string of the queue's account


def queue_trigger(function: str, binding: dict, get_connection: Callable[[str], str],
                  settings: Mapping[str, str] | None = None) -> QueueTrigger:
    """Check a queueTrigger binding; QueueTriggerError names the function and what is wrong."""
    settings = os.environ if settings is None else settings
    raw = binding.get("queueName") or ""
    try:
        queue = _SETTING.sub(lambda found: settings[found.group(1)], raw)
    except KeyError as missing:
        raise QueueTriggerError(f"queue trigger `{function}`: `queueName` {raw!r} names app setting "
                                f"{missing.args[0]!r}, which is not set") from None
    if not STORAGE_NAME.match(queue):
        raise QueueTriggerError(f"queue trigger `{function}`: `queueName` must be 3-63 lowercase letters, digits "
                                f"and single hyphens, got {queue!r}")
    try:
        _, connection = binding_connection(binding, get_connection)
    except ValueError as error:
        raise QueueTriggerError(f"queue trigger `{function}`: {error}") from None
    return QueueTrigger(function=function, binding_name=binding.get("name", "message"), queue=queue,
                        connection=connection)


def decode(content: str, encoding: str) -> bytes:
    """A message's body as the function gets it; ValueError when it is not valid `encoding`."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        return base64.b64decode(content, validate=True)
    except binascii.Error:
        raise ValueError("the message is not valid base64 (host.json `extensions.queues.messageEncoding` "
                         "is `base64`)") from None


def function_message(message: QueueMessage, body: bytes) -> FunctionQueueMessage:
    """The `func.QueueMessage` the Python worker hands a queue-triggered function."""
    return FunctionQueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                expiration_time=message.expires_on, insertion_time=message.inserted_on,
                                time_next_visible=message.next_visible_on, pop_receipt=message.pop_receipt)


class QueueTriggerPoller:
    """Polls the queue of every queue-triggered function until `stop` is set."""

    def __init__(self, functions: list[tuple[str, dict]], get_connection: Callable[[str], str],
                 invoke: Callable[[str, dict], Awaitable[None]], poll_interval: float = 1.0, *,
                 encoding: str = "base64", max_dequeue_count: int = MAX_DEQUEUE_COUNT,
                 batch_size: int = BATCH_SIZE, lease: float = LEASE, settings: Mapping[str, str] | None = None):
        if encoding not in ENCODINGS:
            raise QueueTriggerError(f"`extensions.queues.messageEncoding` must be one of {', '.join(ENCODINGS)}, "
                                    f"got {encoding!r}")
        self._invoke = invoke
        self.poll_interval = poll_interval
        self.encoding = encoding
        self.max_dequeue_count = max_dequeue_count
        self.batch_size = batch_size  # messages one function runs at once (`extensions.queues.batchSize`)
        self.lease = lease
        self.triggers = [queue_trigger(name, binding, get_connection, settings) for name, binding in functions]
        self._clients: dict[tuple[str, str], QueueClient] = {}
        self._woken: list[asyncio.Event] = []  # one per queue's loop: `wake` sets them all

    def _client(self, connection: str, queue: str) -> QueueClient:
        # No encode or decode policy: messages are read and forwarded as the text stored.
        if (connection, queue) not in self._clients:
            self._clients[(connection, queue)] = QueueClient.from_connection_string(
                connection, queue, retry_policy=LinearRetry(**SDK_RETRY))
        return self._clients[(connection, queue)]

    async def run(self, stop: asyncio.Event) -> None:
        """Each queue is polled on its own, so a long-running function on one queue never holds
        up another queue's messages (as each trigger listens on its own in Azure)."""
        try:
            await asyncio.gather(*(self._poll(trigger, stop) for trigger in self.triggers))
        finally:
            for client in self._clients.values():
                client.close()

    def wake(self) -> None:
        """Look at every queue now: work that just ended (a function, an activity) may have
        sent a message. Call on the loop."""
        for woken in self._woken:
            woken.set()

    async def _poll(self, trigger: QueueTrigger, stop: asyncio.Event) -> None:
        failures = 0
        woken = asyncio.Event()
        self._woken.append(woken)
        while not stop.is_set():
            woken.clear()
            try:
                healthy, busy = await self._poll_trigger(trigger)
            except Exception:  # noqa: BLE001 - the poller must outlive any storage surprise
                log.exception("Queue trigger poll of %s failed; backing off", trigger.queue)
                healthy, busy = False, False
            failures = 0 if healthy else failures + 1
            if busy and healthy:
                continue   # messages came: ask again at once, as Azure does
            delay = backoff_delay(self.poll_interval, failures)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(woken.wait())]
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()

    async def poll_once(self) -> tuple[bool, bool]:
        """Receive and run one batch per function: (no storage errors, some message came)."""
        results = [await self._poll_trigger(trigger) for trigger in self.triggers]
        return all(healthy for healthy, _ in results), any(busy for _, busy in results)

    async def _poll_trigger(self, trigger: QueueTrigger) -> tuple[bool, bool]:
        try:
            messages = await asyncio.to_thread(self._receive, trigger)
        except AzureError as error:
            log.warning("Queue trigger %s cannot read queue %s (%s); backing off", trigger.function,
                        trigger.queue, str(error).splitlines()[0] if str(error) else type(error).__name__)
            return False, False
        await asyncio.gather(*(self._process(trigger, message) for message in messages))
        return True, bool(messages)

    def _receive(self, trigger: QueueTrigger) -> list[QueueMessage]:
        client = self._client(trigger.connection, trigger.queue)
        try:
            return list(client.receive_messages(max_messages=self.batch_size, visibility_timeout=math.ceil(self.lease)))
        except ResourceNotFoundError:
            return []   # Azure waits for the queue to appear; so do we

    async def _process(self, trigger: QueueTrigger, message: QueueMessage) -> None:
        done = asyncio.Event()
        renewing = asyncio.create_task(self._keep_hidden(trigger, message, done))
        try:
            body = decode(message.content, self.encoding)
            await self._invoke(trigger.function, {trigger.binding_name: function_message(message, body)})
        except Exception as error:  # noqa: BLE001 - any failure of the function counts
            log.warning("%s failed on message %s of %s (try %d of %d): %s", trigger.function, message.id,
                        trigger.queue, message.dequeue_count, self.max_dequeue_count, error)
            done.set()
            await renewing  # a renewal under way ends first: the message's newest receipt is needed below
            await asyncio.to_thread(self._after_failure, trigger, message)
            return
        done.set()
        await renewing
        await asyncio.to_thread(self._settle, trigger, message, "delete the message")
        self.wake()

    async def _keep_hidden(self, trigger: QueueTrigger, message: QueueMessage, done: asyncio.Event) -> None:
        """Renew the message's lease until `done` (as Azure's listener does while a function
        runs), so a long function keeps it and a host that dies gives it back within one lease."""
        client = self._client(trigger.connection, trigger.queue)
        while True:
            try:
                await asyncio.wait_for(done.wait(), timeout=self.lease / 2)
                return
            except asyncio.TimeoutError:
                pass
            try:
                renewed = await asyncio.to_thread(client.update_message, message, message.pop_receipt,
                                                  visibility_timeout=math.ceil(self.lease))
            except AzureError as error:
                log.warning("Could not renew the lease of message %s of %s (%s)", message.id, trigger.queue, error)
                continue
            message.pop_receipt = renewed.pop_receipt  # the next update or delete needs the newest

    def _after_failure(self, trigger: QueueTrigger, message: QueueMessage) -> None:
        client = self._client(trigger.connection, trigger.queue)
        if (message.dequeue_count or 0) >= self.max_dequeue_count:
            poison = self._client(trigger.connection, f"{trigger.queue}-poison")
            try:
                try:
                    poison.create_queue()
                except ResourceExistsError:
                    pass
                poison.send_message(message.content)
            except AzureError as error:   # it stays hidden, then comes back to be tried again
                log.warning("Could not move message %s to %s-poison (%s)", message.id, trigger.queue, error)
                return
            log.error("%s failed %d times on message %s: moved to %s-poison", trigger.function,
                      message.dequeue_count, message.id, trigger.queue)
            self._settle(trigger, message, "delete the poisoned message")
            return
        try:   # visible again at once: the next receive tries it again
            client.update_message(message, message.pop_receipt, visibility_timeout=0)
        except AzureError as error:
            log.warning("Could not release message %s of %s (%s); it is tried again once it shows",
                        message.id, trigger.queue, error)

    def _settle(self, trigger: QueueTrigger, message: QueueMessage, what: str) -> None:
        try:
            self._client(trigger.connection, trigger.queue).delete_message(message)
        except AzureError as error:   # it shows again after its lease and runs once more
            log.warning("Could not %s %s of %s (%s)", what, message.id, trigger.queue, error)

