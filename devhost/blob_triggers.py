"""Blob triggers: poll containers and run each `blobTrigger` function once per blob version.

What we copy from Azure's blob trigger (the polling "LogsAndContainerScan" flavour):
- A path is `container/pattern`; `{name}`-style placeholders match any text (slashes too),
  literal parts must match, e.g. `prompts/{name}.json` only sees `.json` blobs.
- Blob receipts live in the host's storage account, container `azure-webjobs-hosts`, at
  `blobreceipts/<hostId>/<function>/<container>/<blob>`, with the ETag in the metadata: each
  blob version (ETag) is processed once, also across host restarts, and blobs that existed
  before the host started and have no receipt are processed.
- A function that raises is retried until it has run 5 times (`maxDequeueCount`); then a
  message naming the blob goes to the `webjobs-blobtrigger-poison` queue, base64 encoded as
  the Functions runtime writes queue messages, and the version is not tried again. The
  attempt count is kept in the receipt, so a restart mid-retry does not start over.
- A blob deleted before it is processed is skipped quietly.
- Storage errors never stop the poller: it logs, backs off, and carries on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.functions.blob import InputStream
from azure.storage.blob import BlobServiceClient, LinearRetry
from azure.storage.queue import LinearRetry as QueueLinearRetry
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devhost.azurite import resolve_connection_string
from devhost.storage_polling import (
    HOST_STORAGE_SETTING,
    MAX_DEQUEUE_COUNT,
    SDK_RETRY,
    STORAGE_NAME,
    backoff_delay,
    binding_connection,
)

log = logging.getLogger("devhost.blob")

RECEIPTS_CONTAINER = "azure-webjobs-hosts"
POISON_QUEUE = "webjobs-blobtrigger-poison"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class BlobTriggerError(ValueError):
    """A blobTrigger binding devhost cannot run; names the function, the field and the value."""


@dataclass(frozen=True)
class BlobPath:
    """A parsed blobTrigger `path`: the container and a pattern over blob names."""

    text: str
    container: str
    regex: re.Pattern
    prefix: str          # the literal start of the pattern, to narrow the listing

    def match(self, blob_name: str) -> dict[str, str] | None:
        """The placeholder values (Azure's binding data) when `blob_name` fits, else None."""
        found = self.regex.fullmatch(blob_name)
        return None if found is None else found.groupdict()


def parse_blob_path(path: str) -> BlobPath:
    if not isinstance(path, str) or not path.strip("/"):
        raise BlobTriggerError(f"`path` must be `container/pattern`, like `prompts/{{name}}`, got {path!r}")
    container, _, pattern = path.strip("/").partition("/")
    if not STORAGE_NAME.match(container):
        raise BlobTriggerError(
            f"`path` {path!r}: container `{container}` must be 3-63 lowercase letters, digits "
            f"and single hyphens (placeholders are only allowed after the container)")
    if not pattern:
        pattern = "{name}"   # a bare container triggers on every blob in it
    parts, names, position = [], set(), 0
    for placeholder in _PLACEHOLDER.finditer(pattern):
        parts.append(_literal(pattern[position:placeholder.start()], path))
        name = placeholder.group(1)
        if not name.isidentifier():
            raise BlobTriggerError(f"`path` {path!r}: placeholder `{{{name}}}` must be a name like `{{name}}`")
        if name in names:
            raise BlobTriggerError(f"`path` {path!r}: placeholder `{{{name}}}` appears twice")
        names.add(name)
        parts.append(f"(?P<{name}>.+)")
        position = placeholder.end()
    parts.append(_literal(pattern[position:], path))
    prefix = pattern.split("{", 1)[0]
    return BlobPath(text=path, container=container, regex=re.compile("".join(parts), re.DOTALL), prefix=prefix)


def _literal(text: str, path: str) -> str:
    if "{" in text or "}" in text:
        raise BlobTriggerError(f"`path` {path!r} has an unmatched brace")
    return re.escape(text)


@dataclass(frozen=True)
class BlobTrigger:
    function: str
    binding_name: str
    path: BlobPath
    connection: str      # the resolved connection string of the blobs' account


@dataclass(frozen=True)
class Receipt:
    """What we know about one function's processing of one blob."""

    etag: str
    attempts: int
    outcome: str         # "succeeded", "poisoned" or "retrying"

    @property
    def done(self) -> bool:
        return self.outcome in ("succeeded", "poisoned")


class ReceiptStore:
    """Blob receipts in `azure-webjobs-hosts`; blocking calls, run them in a thread."""

    def __init__(self, service: BlobServiceClient, host_id: str):
        self._container = service.get_container_client(RECEIPTS_CONTAINER)
        self._host_id = host_id
        self._created = False

    def _prefix(self, function: str) -> str:
        return f"blobreceipts/{self._host_id}/{function}/"

    def load(self, function: str) -> dict[tuple[str, str], Receipt]:
        """Every receipt of `function`, keyed by (container, blob name)."""
        prefix = self._prefix(function)
        receipts = {}
        try:
            for item in self._container.list_blobs(name_starts_with=prefix, include=["metadata"]):
                container, _, blob = item.name[len(prefix):].partition("/")
                metadata = item.metadata or {}
                receipts[(container, blob)] = Receipt(
                    etag=metadata.get("etag", ""), attempts=int(metadata.get("attempts", "0")),
                    outcome=metadata.get("outcome", "succeeded"))
        except ResourceNotFoundError:
            pass   # no receipts container yet: nothing was ever processed
        return receipts

    def save(self, function: str, container: str, blob: str, receipt: Receipt) -> None:
        if not self._created:
            try:
                self._container.create_container()
            except ResourceExistsError:
                pass
            self._created = True
        self._container.upload_blob(
            f"{self._prefix(function)}{container}/{blob}", b"", overwrite=True,
            metadata={"etag": receipt.etag, "attempts": str(receipt.attempts), "outcome": receipt.outcome})


def same_etag(first: str, second: str) -> bool:
    # Listings give ETags bare (0x8D...), reads give them quoted ("0x8D..."), in Azure and Azurite.
    return first.strip('"') == second.strip('"')


def poison_message(function: str, container: str, blob: str, etag: str, blob_type: str = "BlockBlob") -> dict:
    """The message Azure puts on `webjobs-blobtrigger-poison` for a blob that kept failing."""
    return {"Type": "BlobTrigger", "FunctionId": f"Host.Functions.{function}", "BlobType": blob_type,
            "ContainerName": container, "BlobName": blob, "ETag": etag}


def send_to_poison_queue(connection: str, message: dict) -> None:
    with QueueClient.from_connection_string(connection, POISON_QUEUE,
                                            message_encode_policy=TextBase64EncodePolicy(),
                                            retry_policy=QueueLinearRetry(**SDK_RETRY)) as queue:
        try:
            queue.create_queue()
        except ResourceExistsError:
            pass
        queue.send_message(json.dumps(message))


def decode_poison_message(content: str) -> dict:
    """Read back a poison message as written (base64 JSON); for tools and tests."""
    return json.loads(base64.b64decode(content))


def _blob_properties(properties) -> dict:
    """The `Properties` trigger metadata azure-functions reads into `InputStream.blob_properties`."""
    settings = properties.content_settings
    md5 = settings.content_md5
    return {
        "ContentLength": properties.size,
        "ContentType": settings.content_type,
        "ContentMD5": base64.b64encode(md5).decode() if md5 else None,
        "ETag": properties.etag,
        "LastModified": properties.last_modified.isoformat() if properties.last_modified else None,
        "CreatedOn": properties.creation_time.isoformat() if properties.creation_time else None,
        "BlobType": str(getattr(properties.blob_type, "value", properties.blob_type)),
    }


@dataclass
class _Download:
    stream: InputStream
    etag: str
    blob_type: str


class BlobTriggerPoller:
    """Polls the containers of every blob-triggered function until `stop` is set."""

    def __init__(self, functions: list[tuple[str, dict]], get_connection: Callable[[str], str],
                 invoke: Callable[[str, dict], Awaitable[None]], poll_interval: float = 1.0, *,
                 host_id: str = "devhost", max_dequeue_count: int = MAX_DEQUEUE_COUNT,
                 max_concurrency: int = 4, retry_delay: float = 0.1):
        self._invoke = invoke
        self.poll_interval = poll_interval
        self.max_dequeue_count = max_dequeue_count
        self.retry_delay = retry_delay
        self.triggers = [_blob_trigger(name, binding, get_connection) for name, binding in functions]
        # Receipts and the poison queue belong to the host's account, as in Azure; without
        # AzureWebJobsStorage we keep them beside the blobs.
        try:
            host_connection = resolve_connection_string(get_connection(HOST_STORAGE_SETTING))
        except (KeyError, ValueError):
            host_connection = self.triggers[0].connection if self.triggers else ""
        self._host_connection = host_connection
        self._services: dict[str, BlobServiceClient] = {}
        self._host_receipts = ReceiptStore(self._service(host_connection), host_id) if host_connection else None
        self._receipts: dict[str, dict[tuple[str, str], Receipt]] = {}
        self._in_flight: dict[tuple[str, str, str], asyncio.Task] = {}
        self._slots = asyncio.Semaphore(max_concurrency)
        self._stop = asyncio.Event()

    @property
    def _receipt_store(self) -> ReceiptStore:
        # No host connection only without triggers, and then nothing asks for receipts.
        assert self._host_receipts is not None, "blob triggers without a host connection"
        return self._host_receipts

    def _service(self, connection: str) -> BlobServiceClient:
        if connection not in self._services:
            self._services[connection] = BlobServiceClient.from_connection_string(
                connection, retry_policy=LinearRetry(**SDK_RETRY))
        return self._services[connection]

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        failures = 0
        try:
            while not stop.is_set():
                try:
                    healthy = await self.poll_once()
                except Exception:  # noqa: BLE001 - the poller must outlive any storage surprise
                    log.exception("Blob trigger poll failed; backing off")
                    healthy = False
                failures = 0 if healthy else failures + 1
                delay = backoff_delay(self.poll_interval, failures)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._finish_in_flight()
            self._close()

    def _close(self) -> None:
        # Open keep-alive connections would hold up an Azurite shutting down after us.
        # A poller runs once: the host makes a new one for each start.
        for service in self._services.values():
            service.close()

    async def poll_once(self) -> bool:
        """List every watched container once and start work for new versions; False on storage errors."""
        healthy = True
        for (connection, container), triggers in self._by_container().items():
            try:
                for trigger in triggers:
                    if trigger.function not in self._receipts:
                        self._receipts[trigger.function] = await asyncio.to_thread(
                            self._receipt_store.load, trigger.function)
                prefix = _common_prefix([t.path.prefix for t in triggers])
                blobs = await asyncio.to_thread(self._list, connection, container, prefix)
            except AzureError as error:
                healthy = False
                log.warning("Blob triggers cannot read container %s (%s); backing off", container,
                            _short(error))
                continue
            for name, etag in blobs:
                for trigger in triggers:
                    self._consider(trigger, name, etag)
        return healthy

    def _by_container(self) -> dict[tuple[str, str], list[BlobTrigger]]:
        grouped: dict[tuple[str, str], list[BlobTrigger]] = {}
        for trigger in self.triggers:
            grouped.setdefault((trigger.connection, trigger.path.container), []).append(trigger)
        return grouped

    def _list(self, connection: str, container: str, prefix: str) -> list[tuple[str, str]]:
        client = self._service(connection).get_container_client(container)
        try:
            return [(blob.name, blob.etag) for blob in client.list_blobs(name_starts_with=prefix or None)]
        except ResourceNotFoundError:
            return []   # Azure waits for the container to appear; so do we

    def _consider(self, trigger: BlobTrigger, blob: str, etag: str) -> None:
        if trigger.path.match(blob) is None:
            return
        key = (trigger.function, trigger.path.container, blob)
        receipt = self._receipts[trigger.function].get(key[1:])
        same_version = receipt is not None and same_etag(receipt.etag, etag)
        if (receipt is not None and same_version and receipt.done) or key in self._in_flight:
            return
        attempts = receipt.attempts if receipt is not None and same_version else 0
        task = asyncio.create_task(self._process(trigger, blob, etag, attempts),
                                   name=f"blob-trigger {trigger.function} {trigger.path.container}/{blob}")
        self._in_flight[key] = task
        task.add_done_callback(lambda _: self._in_flight.pop(key, None))

    async def _process(self, trigger: BlobTrigger, blob: str, listed_etag: str, attempts: int) -> None:
        container = trigger.path.container
        async with self._slots:
            while not self._stop.is_set():
                try:
                    download = await asyncio.to_thread(self._download, trigger, blob)
                except ResourceNotFoundError:
                    log.debug("Blob %s/%s was deleted before %s could run; skipped", container, blob,
                              trigger.function)
                    return
                except Exception as error:  # noqa: BLE001 - storage trouble: the next poll retries
                    log.warning("Could not read blob %s/%s for %s (%s); will try again", container, blob,
                                trigger.function, _short(error))
                    return
                if not same_etag(download.etag, listed_etag):   # changed since the listing: a new version
                    listed_etag, attempts = download.etag, 0
                attempts += 1
                try:
                    await self._invoke(trigger.function, {trigger.binding_name: download.stream})
                except Exception as error:  # noqa: BLE001 - any failure of the function counts
                    log.warning("%s failed on %s/%s (attempt %d of %d): %s", trigger.function, container,
                                blob, attempts, self.max_dequeue_count, error)
                    if attempts >= self.max_dequeue_count:
                        await self._poison(trigger, blob, download, attempts)
                        return
                    await self._record(trigger, blob, Receipt(download.etag, attempts, "retrying"))
                    if self.retry_delay:
                        await asyncio.sleep(self.retry_delay)
                    continue
                await self._record(trigger, blob, Receipt(download.etag, attempts, "succeeded"))
                return

    def _download(self, trigger: BlobTrigger, blob: str) -> _Download:
        client = self._service(trigger.connection).get_blob_client(trigger.path.container, blob)
        downloader = client.download_blob()
        data = downloader.readall()
        properties = downloader.properties
        stream = InputStream(data=data, name=f"{trigger.path.container}/{blob}", uri=client.url,
                             length=len(data), blob_properties=_blob_properties(properties),
                             metadata=dict(properties.metadata or {}))
        return _Download(stream=stream, etag=properties.etag, blob_type=stream.blob_properties["BlobType"])

    async def _record(self, trigger: BlobTrigger, blob: str, receipt: Receipt) -> None:
        # Remember it in memory first: even if storage is down we do not rerun it in this process.
        self._receipts[trigger.function][(trigger.path.container, blob)] = receipt
        try:
            await asyncio.to_thread(self._receipt_store.save, trigger.function, trigger.path.container,
                                    blob, receipt)
        except Exception as error:  # noqa: BLE001 - storage trouble must not kill the task
            log.warning("Could not write the blob receipt of %s for %s/%s (%s)", trigger.function,
                        trigger.path.container, blob, _short(error))

    async def _poison(self, trigger: BlobTrigger, blob: str, download: _Download, attempts: int) -> None:
        message = poison_message(trigger.function, trigger.path.container, blob, download.etag,
                                 download.blob_type)
        log.error("%s failed %d times on %s/%s: moved to the %s queue", trigger.function, attempts,
                  trigger.path.container, blob, POISON_QUEUE)
        try:
            await asyncio.to_thread(send_to_poison_queue, self._host_connection, message)
        except Exception as error:  # noqa: BLE001 - storage trouble must not kill the task
            log.warning("Could not write to the %s queue (%s)", POISON_QUEUE, _short(error))
        await self._record(trigger, blob, Receipt(download.etag, attempts, "poisoned"))

    async def _finish_in_flight(self, grace: float = 8.0) -> None:
        """Let running invocations end (no new attempts start once stopped), then give up on them."""
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _blob_trigger(function: str, binding: dict, get_connection: Callable[[str], str]) -> BlobTrigger:
    try:
        path = parse_blob_path(binding.get("path", ""))
    except BlobTriggerError as error:
        raise BlobTriggerError(f"blob trigger `{function}`: {error}") from None
    try:
        _, connection = binding_connection(binding, get_connection)
    except ValueError as error:
        raise BlobTriggerError(f"blob trigger `{function}`: {error}") from None
    return BlobTrigger(function=function, binding_name=binding.get("name", "blob"), path=path,
                       connection=connection)


def _common_prefix(prefixes: list[str]) -> str:
    first, last = min(prefixes), max(prefixes)
    length = 0
    while length < min(len(first), len(last)) and first[length] == last[length]:
        length += 1
    return first[:length]


def _short(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
