"""Blob storage: a small client over `azure-storage-blob`, by blob ref (`imagegen.core.blob_names`).

`BlobStore` wraps ONE `BlobServiceClient` (the SDK's clients are thread-safe and hold a
connection pool); a process keeps one (`Services.store`), so activities running
concurrently in one worker share it instead of opening a client per call.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from imagegen.core.blob_names import CONTAINERS, check_container, split_ref
from imagegen.core.settings import Settings

# Content types for what we store; anything else falls back to `mimetypes`.
_CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "json": "application/json",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "txt": "text/plain; charset=utf-8",
}


def guess_content_type(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in _CONTENT_TYPES:
        return _CONTENT_TYPES[ext]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class BlobNotFound(LookupError):
    """The blob `ref` does not exist (or its container does not)."""

    def __init__(self, ref: str):
        self.ref = ref
        super().__init__(f"blob `{ref}` does not exist")


class ContainerNotFound(LookupError):
    """A write went to a container that has not been created."""

    def __init__(self, container: str):
        self.container = container
        super().__init__(
            f"container `{container}` does not exist in this storage account: call "
            "`BlobStore.ensure_containers()` once at startup (in Azure the Bicep creates it)"
        )


class BlobChanged(RuntimeError):
    """A conditional write lost a race: the blob's ETag is no longer the one read."""

    def __init__(self, ref: str, etag: str):
        self.ref = ref
        self.etag = etag
        super().__init__(f"blob `{ref}` changed since it was read (expected ETag {etag})")


def normalize_connection_string(value: str) -> str:
    """Accept `UseDevelopmentStorage=true` in any letter case.

    azure-storage-blob expands `UseDevelopmentStorage=true` itself (to Azurite on
    127.0.0.1:10000 with the emulator's published key) but only with a lowercase `true`;
    `local.settings.json` files in the wild also say `True`.
    """
    if value.strip().rstrip(";").replace(" ", "").lower() == "usedevelopmentstorage=true":
        return "UseDevelopmentStorage=true"
    return value


# -- the client ---------------------------------------------------------------------------


class BlobStore:
    """Read and write blobs by ref. Build with one of the `from_*` constructors."""

    def __init__(self, service: BlobServiceClient):
        self._service = service

    @classmethod
    def from_connection_string(cls, connection_string: str, **client_options: Any) -> "BlobStore":
        """`client_options` go to the SDK's client (e.g. a `retry_policy`)."""
        if not connection_string or not connection_string.strip():
            raise ValueError("storage connection string is empty: set `AzureWebJobsStorage`")
        try:
            service = BlobServiceClient.from_connection_string(normalize_connection_string(connection_string),
                                                               **client_options)
        except ValueError as error:
            # The SDK's message never echoes the string (it holds the account key); neither do we.
            raise ValueError(f"storage connection string (`AzureWebJobsStorage`) is not valid: {error}") from None
        return cls(service)

    @classmethod
    def from_account_url(cls, url: str, credential: Any = None, **client_options: Any) -> "BlobStore":
        """Identity-based access; `DefaultAzureCredential` when no credential is given.

        In Azure that is the app's managed identity (`AZURE_CLIENT_ID` picks a
        user-assigned one); on a laptop, `az login`.
        """
        if credential is None:
            from azure.identity import DefaultAzureCredential  # slow import: only when needed

            credential = DefaultAzureCredential()
        return cls(BlobServiceClient(account_url=url, credential=credential, **client_options))

    @classmethod
    def from_settings(cls, settings: Settings, **client_options: Any) -> "BlobStore":
        """The connection string when set (local, Azurite), else the blob service URI (Azure)."""
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string, **client_options)
        if settings.storage_blob_service_uri:
            return cls.from_account_url(settings.storage_blob_service_uri, **client_options)
        raise ValueError(
            "storage is not configured: set `AzureWebJobsStorage` (a connection string, "
            "`UseDevelopmentStorage=true` locally) or `AzureWebJobsStorage__blobServiceUri` "
            "(managed identity)"
        )

    def _blob(self, ref: str):
        container, path = split_ref(ref)
        return self._service.get_blob_client(container, path)

    def put(self, ref: str, data: bytes, content_type: str | None = None,
            metadata: dict[str, str] | None = None, *, if_match: str | None = None,
            if_missing: bool = False) -> str:
        """Write `data` to `ref` in one upload, replacing what was there; return its URL.

        `if_match` (an ETag from `get_with_etag`) makes the write conditional: it raises
        `BlobChanged` if someone else wrote the blob in between. `if_missing` writes only a
        blob that does not exist yet (`BlobChanged` if someone created it first).
        """
        from azure.core import MatchConditions

        blob = self._blob(ref)
        settings = ContentSettings(content_type=content_type or guess_content_type(ref))
        options: dict[str, Any] = {}
        if if_match is not None:
            options = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        elif if_missing:
            options = {"match_condition": MatchConditions.IfMissing}
        try:
            blob.upload_blob(bytes(data), overwrite=True, content_settings=settings,
                             metadata=metadata, **options)
        except ResourceNotFoundError as error:
            if error.error_code == "ContainerNotFound":  # type: ignore[attr-defined]  # set by azure-storage, not declared
                raise ContainerNotFound(blob.container_name) from None
            raise
        except (ResourceModifiedError, ResourceExistsError):
            raise BlobChanged(ref, if_match or "*") from None
        return blob.url

    def get(self, ref: str) -> bytes:
        return self.get_with_etag(ref)[0]

    def get_with_etag(self, ref: str) -> tuple[bytes, str]:
        """The blob's bytes and its ETag (for a later `put(..., if_match=etag)`)."""
        try:
            downloader = self._blob(ref).download_blob()
            return downloader.readall(), downloader.properties.etag
        except ResourceNotFoundError:
            raise BlobNotFound(ref) from None

    def exists(self, ref: str) -> bool:
        return self._blob(ref).exists()

    def get_chunks(self, ref: str) -> Iterator[bytes]:
        """The blob's bytes a chunk at a time (the SDK's download chunks, 4 MiB), for files
        too large to hold in memory at once."""
        try:
            downloader = self._blob(ref).download_blob()
        except ResourceNotFoundError:
            raise BlobNotFound(ref) from None
        yield from downloader.chunks()

    def size(self, ref: str) -> int:
        """The blob's size in bytes, without reading it."""
        try:
            return int(self._blob(ref).get_blob_properties().size)
        except ResourceNotFoundError:
            raise BlobNotFound(ref) from None

    def url(self, ref: str) -> str:
        return self._blob(ref).url

    def list(self, container: str, prefix: str = "") -> list[str]:
        """Refs of the blobs in `container` whose path starts with `prefix`, in name order."""
        check_container(container)
        client = self._service.get_container_client(container)
        try:
            return [f"{container}/{name}" for name in client.list_blob_names(name_starts_with=prefix or None)]
        except ResourceNotFoundError:
            return []

    def copy(self, src: str, dst: str, *, wait_seconds: float = 60.0) -> None:
        """Server-side copy of `src` to `dst` in this account (the bytes never pass through
        this process); waits until the copy is done. Idempotent: copying again overwrites
        with the same bytes.

        Copy Blob within one account is authorized by this client's own credential (the
        managed identity in Azure), so no SAS is made; small blobs copy at once, larger
        ones are polled until the service says `success`.
        """
        import time

        source, target = self._blob(src), self._blob(dst)
        try:
            copy = target.start_copy_from_url(source.url)
        except ResourceNotFoundError as error:
            if error.error_code == "ContainerNotFound":  # type: ignore[attr-defined]  # set by azure-storage, not declared
                raise ContainerNotFound(target.container_name) from None
            raise BlobNotFound(src) from None
        status = copy.get("copy_status")
        deadline = time.monotonic() + wait_seconds
        while status == "pending":
            if time.monotonic() > deadline:
                raise TimeoutError(f"copying `{src}` to `{dst}` did not finish in {wait_seconds:g}s")
            time.sleep(0.2)
            status = target.get_blob_properties().copy.status
        if status != "success":
            raise RuntimeError(f"copying `{src}` to `{dst}` ended {status!r}")

    def get_dropped(self, name: str) -> bytes:
        """A file dropped into `prompts/` by any name, even one `check_path` refuses.

        Only for the blob trigger, which must move such a file aside: anyone can upload
        a name with an empty segment or a control character.
        """
        return self.get_dropped_version(name)[0]

    def get_dropped_version(self, name: str) -> tuple[bytes, str]:
        """`get_dropped`, with the ETag of the version read (for `delete_dropped(..., etag)`)."""
        try:
            downloader = self._service.get_blob_client("prompts", name).download_blob()
            return downloader.readall(), downloader.properties.etag
        except ResourceNotFoundError:
            raise BlobNotFound(f"prompts/{name}") from None

    def delete_dropped(self, name: str, etag: str | None = None) -> bool:
        """Delete a file dropped into `prompts/` by any name; gone already is not an error.

        With `etag`, only that version: False (and nothing deleted) when the file was
        uploaded again since, so a newer version is left for the blob trigger."""
        options: dict[str, Any] = {}
        if etag is not None:
            from azure.core import MatchConditions

            options = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
        try:
            self._service.get_blob_client("prompts", name).delete_blob(**options)
        except ResourceNotFoundError:
            pass
        except ResourceModifiedError:
            return False
        return True

    def delete(self, ref: str) -> None:
        """Delete `ref`; a blob that is already gone is not an error."""
        try:
            self._blob(ref).delete_blob()
        except ResourceNotFoundError:
            pass

    def ensure_containers(self) -> None:
        """Create every container in `CONTAINERS` that does not exist yet."""
        for container in CONTAINERS:
            try:
                self._service.create_container(container)
            except ResourceExistsError:
                pass




def open_store(settings: Settings) -> BlobStore:
    """The store these settings name, its containers created (once per process, by
    `Services.store`): locally nothing else creates them; in Azure the Bicep does, and
    creating an existing container is a cheap no-op."""
    store = BlobStore.from_settings(settings)
    store.ensure_containers()
    return store
