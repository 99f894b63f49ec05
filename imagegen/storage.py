"""Blob storage: the one place that names blobs, and a small client over `azure-storage-blob`.

Blobs are referred to everywhere by a *ref*, the string `"{container}/{path}"`
(e.g. `"outputs/job-1/v003.png"`): refs are what travel through orchestration history,
never bytes. The layout functions below (`output_ref`, `manifest_ref`, ...) are the only
code that builds refs, and they are deterministic, so an activity that is retried writes
the same name again and overwrites rather than duplicates.

`BlobStore` wraps ONE `BlobServiceClient` (the SDK's clients are thread-safe and hold a
connection pool), and `get_store()` caches one store per storage configuration, so
activities running concurrently in one worker share it instead of opening a client per call.
"""

from __future__ import annotations

import mimetypes
import re
import threading
import urllib.parse
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from imagegen.settings import Settings

# Every container the app uses; tests/infra compares this with the Bicep templates.
CONTAINERS: tuple[str, ...] = (
    "prompts",  # drop job files here (blob trigger)
    "prompts-rejected",  # job files that failed validation, each with NAME.error.json
    "schedules",  # schedule YAML files
    "inputs",  # img2img source images
    "outputs",  # published images: outputs/{job_id}/{variant_id}.{ext}
    "quarantine",  # blocked or unchecked images: quarantine/{job_id}/{variant_id}.{ext}
    "manifests",  # one JSON per job: manifests/{job_id}.json
    "published",  # images a reviewer approved: published/{job_id}/{variant_id}.{ext}
)

# Ids become one path segment: letters, digits, `.`, `_`, `-`, starting with a letter or
# digit (so never `.` or `..`), and short enough that every name stays far below Azure's
# 1,024-character blob name limit.
MAX_ID_LENGTH = 128
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXT = re.compile(r"[a-z0-9]{1,8}")
MAX_PATH_LENGTH = 1024

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


# -- the layout ---------------------------------------------------------------------------


def check_id(value: str, field: str = "id") -> str:
    """Return `value` if it is safe as one path segment of a blob name, else raise ValueError."""
    if not isinstance(value, str) or value == "":
        raise ValueError(f"`{field}` must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(
            f"`{field}` must be at most {MAX_ID_LENGTH} characters, got {len(value)} ({value[:20]!r}...)"
        )
    if not _ID.fullmatch(value):
        raise ValueError(
            f"`{field}` must be letters, digits, `.`, `_` or `-`, starting with a letter or digit, "
            f"got {value!r}"
        )
    return value


def check_path(path: str, field: str = "name") -> str:
    """Return `path` if it is a clean blob path (`a/b.png`), else raise ValueError.

    Rejects what would name a different blob than it seems to: empty segments (`a//b`,
    leading or trailing `/`), `.` and `..` segments, backslashes and control characters.
    """
    if not isinstance(path, str) or path == "":
        raise ValueError(f"`{field}` must be a non-empty blob path, got {path!r}")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"`{field}` must be at most {MAX_PATH_LENGTH} characters, got {len(path)}")
    if "\\" in path or any(ord(char) < 32 or ord(char) == 127 for char in path):
        raise ValueError(f"`{field}` must not contain backslashes or control characters, got {path!r}")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"`{field}` must not have empty, `.` or `..` path segments, got {path!r}"
            )
    return path


def check_container(container: str) -> str:
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)}; got {container!r}")
    return container


def split_ref(ref: str) -> tuple[str, str]:
    """`"outputs/job-1/v003.png"` -> `("outputs", "job-1/v003.png")`, validating both parts."""
    if not isinstance(ref, str) or "/" not in ref:
        raise ValueError(f"blob ref must look like `container/path`, got {ref!r}")
    container, path = ref.split("/", 1)
    if container not in CONTAINERS:
        raise ValueError(
            f"blob ref `{ref}` names unknown container {container!r}; "
            f"containers are {', '.join(CONTAINERS)}"
        )
    check_path(path, field=f"path of blob ref `{ref}`")
    return container, path


def _ext(ext: str) -> str:
    if not isinstance(ext, str) or not _EXT.fullmatch(ext):
        raise ValueError(f"`ext` must be 1 to 8 lowercase letters or digits without a dot, got {ext!r}")
    return ext


def prompt_ref(name: str) -> str:
    return f"prompts/{check_path(name)}"


def clean_name(name: str) -> str:
    """`name` when it is a clean blob path; else one flat, clean, reversible name for it
    (percent-encoded: `a//b.yaml` -> `a%2F%2Fb.yaml`), so a bad name can be moved aside."""
    try:
        return check_path(name)
    except ValueError:
        return check_path(urllib.parse.quote(name, safe="") or "%00")


def rejected_ref(name: str) -> str:
    """Where a job file `prompts/{name}` goes when it is rejected."""
    return f"prompts-rejected/{check_path(name)}"


def rejected_error_ref(name: str) -> str:
    """The error report written beside a rejected job file."""
    return f"prompts-rejected/{check_path(name)}.error.json"


def schedule_error_ref(name: str) -> str:
    """The error report written beside an invalid schedule file (deleted once it is fixed)."""
    return f"schedules/{check_path(name)}.error.json"


def input_ref(name: str) -> str:
    """An img2img source image, e.g. `input_ref("sneaker.png")` -> `"inputs/sneaker.png"`."""
    return f"inputs/{check_path(name)}"


def output_ref(job_id: str, variant_id: str, ext: str) -> str:
    """A published image: `outputs/{job_id}/{variant_id}.{ext}`."""
    return f"outputs/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def quarantine_ref(job_id: str, variant_id: str, ext: str) -> str:
    """A blocked or unchecked image, never published: `quarantine/{job_id}/{variant_id}.{ext}`."""
    return f"quarantine/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def published_ref(job_id: str, variant_id: str, ext: str) -> str:
    """An image a reviewer approved: `published/{job_id}/{variant_id}.{ext}`."""
    return f"published/{check_id(job_id, 'job_id')}/{check_id(variant_id, 'variant_id')}.{_ext(ext)}"


def manifest_ref(job_id: str) -> str:
    return f"manifests/{check_id(job_id, 'job_id')}.json"


def cancel_marker_ref(job_id: str) -> str:
    """Written when a job is cancelled: the GPU work of that job looks for it and stops.

    A blob rather than the durable status, so an activity learns of it with the storage
    access it already has, in Azure as under devhost.
    """
    return f"manifests/{check_id(job_id, 'job_id')}.cancelled"


def guess_content_type(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in _CONTENT_TYPES:
        return _CONTENT_TYPES[ext]
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


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
    def from_connection_string(cls, connection_string: str) -> "BlobStore":
        if not connection_string or not connection_string.strip():
            raise ValueError("storage connection string is empty: set `AzureWebJobsStorage`")
        try:
            service = BlobServiceClient.from_connection_string(normalize_connection_string(connection_string))
        except ValueError as error:
            # The SDK's message never echoes the string (it holds the account key); neither do we.
            raise ValueError(f"storage connection string (`AzureWebJobsStorage`) is not valid: {error}") from None
        return cls(service)

    @classmethod
    def from_account_url(cls, url: str, credential: Any = None) -> "BlobStore":
        """Identity-based access; `DefaultAzureCredential` when no credential is given.

        In Azure that is the app's managed identity (`AZURE_CLIENT_ID` picks a
        user-assigned one); on a laptop, `az login`.
        """
        if credential is None:
            from azure.identity import DefaultAzureCredential  # slow import: only when needed

            credential = DefaultAzureCredential()
        return cls(BlobServiceClient(account_url=url, credential=credential))

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "BlobStore":
        """The connection string when set (local, Azurite), else the blob service URI (Azure)."""
        settings = settings or Settings.from_env()
        if settings.storage_connection_string:
            return cls.from_connection_string(settings.storage_connection_string)
        if settings.storage_blob_service_uri:
            return cls.from_account_url(settings.storage_blob_service_uri)
        raise ValueError(
            "storage is not configured: set `AzureWebJobsStorage` (a connection string, "
            "`UseDevelopmentStorage=true` locally) or `AzureWebJobsStorage__blobServiceUri` "
            "(managed identity)"
        )

    def _blob(self, ref: str):
        container, path = split_ref(ref)
        return self._service.get_blob_client(container, path)

    def put(self, ref: str, data: bytes, content_type: str | None = None,
            metadata: dict[str, str] | None = None, *, if_match: str | None = None) -> str:
        """Write `data` to `ref` in one upload, replacing what was there; return its URL.

        `if_match` (an ETag from `get_with_etag`) makes the write conditional: it raises
        `BlobChanged` if someone else wrote the blob in between.
        """
        blob = self._blob(ref)
        settings = ContentSettings(content_type=content_type or guess_content_type(ref))
        options: dict[str, Any] = {}
        if if_match is not None:
            from azure.core import MatchConditions

            options = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        try:
            blob.upload_blob(bytes(data), overwrite=True, content_settings=settings,
                             metadata=metadata, **options)
        except ResourceNotFoundError as error:
            if error.error_code == "ContainerNotFound":
                raise ContainerNotFound(blob.container_name) from None
            raise
        except ResourceModifiedError:
            raise BlobChanged(ref, if_match or "") from None
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
            if error.error_code == "ContainerNotFound":
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
        try:
            return self._service.get_blob_client("prompts", name).download_blob().readall()
        except ResourceNotFoundError:
            raise BlobNotFound(f"prompts/{name}") from None

    def delete_dropped(self, name: str) -> None:
        """Delete a file dropped into `prompts/` by any name; gone already is not an error."""
        try:
            self._service.get_blob_client("prompts", name).delete_blob()
        except ResourceNotFoundError:
            pass

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


_stores: dict[tuple[str | None, str | None], BlobStore] = {}
_stores_lock = threading.Lock()


def get_store(settings: Settings | None = None) -> BlobStore:
    """The process-wide store for these storage settings (from the environment when None)."""
    settings = settings or Settings.from_env()
    # Only the storage fields decide which account we talk to (and Settings holds lists,
    # so it cannot be a dict key itself).
    key = (settings.storage_connection_string, settings.storage_blob_service_uri)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = BlobStore.from_settings(settings)
            # Once per process: locally nothing else creates the containers (in Azure the
            # Bicep does, and creating an existing container is a cheap no-op).
            store.ensure_containers()
            _stores[key] = store
        return store
