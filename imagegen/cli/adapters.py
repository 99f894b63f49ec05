"""`imagegen adapters put FILE [--name N]` and `imagegen adapters list`: LoRA adapters in the
`adapters` container, through the storage connection (`AzureWebJobsStorage`, or
`AzureWebJobsStorage__blobServiceUri` with your Azure login), as `drop` uploads job files.

`put` checks the file first as the app will (imagegen.generation.adapters: at most
`IMAGEGEN_MAX_ADAPTER_BYTES`, a safetensors file of LoRA weights) and refuses it in one line
otherwise; whether it fits a model is checked when a job names it. No torch here.
"""

from __future__ import annotations

import re
from pathlib import Path

from imagegen.cli.dropping import STORAGE_SETTINGS, storage_configured, storage_error
from imagegen.cli.exits import CliError, file_error

SUFFIX = ".safetensors"


def no_storage(what: str) -> CliError:
    return CliError(f"no storage to {what}: set {' or '.join(STORAGE_SETTINGS)} (UseDevelopmentStorage=true for Azurite)")


def adapter_name(path: Path, name: str | None) -> str:
    """The adapter's name: `--name`, else the file's name without `.safetensors`, made a usable name."""
    if name is None:
        stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
        name = re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-.")[:64]
    from imagegen.storage.adapters import check_name

    try:
        return check_name(name)
    except ValueError as error:
        raise CliError(f"{error}: give another with --name") from None


def put_adapter(path: Path, name: str | None) -> str:
    """Check the file and upload it to `adapters/NAME.safetensors`; the blob ref."""
    from azure.core.exceptions import AzureError

    from imagegen.core.settings import Settings
    from imagegen.generation.adapters import AdapterProblem, read_header
    from imagegen.storage.adapters import adapter_ref

    if not storage_configured():
        raise no_storage(f"upload {path.name} into")
    name = adapter_name(path, name)
    try:
        settings = Settings.from_env()
    except ValueError as error:
        raise CliError(f"{str(error).rstrip('.')}: fix the setting and try again") from None
    try:
        size = path.stat().st_size
        if size > settings.max_adapter_bytes:
            read_header(b"", size=size, max_bytes=settings.max_adapter_bytes)
        data = path.read_bytes()
        read_header(data, max_bytes=settings.max_adapter_bytes)
    except OSError as error:
        raise file_error(path, error) from None
    except AdapterProblem as problem:
        raise CliError(f"{path.name} {problem.message}; nothing was uploaded") from None
    try:
        store = _store(settings)
        ref = adapter_ref(name)
        store.put(ref, data, content_type="application/octet-stream")
    except AzureError as error:
        raise storage_error(path, error) from None
    return ref


def list_adapters() -> list[str]:
    """The adapters in the container, by name."""
    from azure.core.exceptions import AzureError

    from imagegen.core.settings import Settings
    from imagegen.storage.adapters import CONTAINER

    if not storage_configured():
        raise no_storage("list adapters in")
    try:
        store = _store(Settings.from_env())
        return [ref.split("/", 1)[1][: -len(SUFFIX)] for ref in store.list(CONTAINER) if ref.endswith(SUFFIX)]
    except ValueError as error:
        raise CliError(f"{str(error).rstrip('.')}: fix the setting and try again") from None
    except AzureError as error:
        raise CliError(f"cannot list the adapters container: {str(error).splitlines()[0]}") from None


def _store(settings):
    from azure.storage.blob import LinearRetry

    from imagegen.storage.blobs import BlobStore

    # A person waits: two retries about a second apart (as `drop`).
    store = BlobStore.from_settings(settings, retry_policy=LinearRetry(backoff=1, retry_total=2, random_jitter_range=1))
    store.ensure_containers()
    return store
