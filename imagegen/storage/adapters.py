"""Where LoRA adapters are: `adapters/{name}.safetensors` in blob storage, and locally the
folder `IMAGEGEN_ADAPTERS_DIR` as well (looked in first).

`find` says where an adapter is and how large it is (so that one too large is refused
before it is read), `chunks` reads it a piece at a time, `read` whole, `names` lists them. Nothing here checks what a file
holds: imagegen.generation.adapters does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from imagegen.core.settings import Settings
from imagegen.storage.blobs import BlobNotFound, BlobStore

CONTAINER = "adapters"
SUFFIX = ".safetensors"
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # as imagegen.jobs.spec's NAME_PATTERN


class AdapterNotFound(LookupError):
    """No adapter of that name in the folder nor the container."""


@dataclass(frozen=True)
class AdapterFile:
    name: str
    where: str  # a local path, or the blob ref `adapters/NAME.safetensors`
    local: bool
    size: int


def adapter_ref(name: str) -> str:
    return f"{CONTAINER}/{name}{SUFFIX}"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name.endswith(SUFFIX):
        raise ValueError(f"an adapter's name uses a-z, 0-9, '-', '_', '.', starts with a letter or digit, is at most "
                         f"64 characters and leaves out {SUFFIX}, got {name!r}")
    return name


def find(name: str, store: BlobStore | None, settings: Settings) -> AdapterFile:
    """The adapter `name`: in `IMAGEGEN_ADAPTERS_DIR` if it is there, else in the container."""
    check_name(name)
    if settings.adapters_dir:
        path = Path(settings.adapters_dir) / f"{name}{SUFFIX}"
        if path.is_file():
            return AdapterFile(name=name, where=str(path), local=True, size=path.stat().st_size)
    if store is not None:
        try:
            return AdapterFile(name=name, where=adapter_ref(name), local=False, size=store.size(adapter_ref(name)))
        except BlobNotFound:
            pass
    raise AdapterNotFound(name)


CHUNK_BYTES = 4 * 2**20


def chunks(found: AdapterFile, store: BlobStore | None) -> Iterator[bytes]:
    """The adapter a chunk at a time: hashed at submit without holding it in memory."""
    if found.local:
        with open(found.where, "rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                yield chunk
        return
    assert store is not None
    yield from store.get_chunks(found.where)


def read(found: AdapterFile, store: BlobStore | None) -> bytes:
    """The whole adapter."""
    if found.local:
        return Path(found.where).read_bytes()
    assert store is not None
    return store.get(found.where)


def names(store: BlobStore | None, settings: Settings) -> list[str]:
    """Every adapter's name, the folder's and the container's, sorted, once each."""
    found: set[str] = set()
    if settings.adapters_dir and Path(settings.adapters_dir).is_dir():
        found |= {path.name[: -len(SUFFIX)] for path in Path(settings.adapters_dir).glob(f"*{SUFFIX}")}
    if store is not None:
        found |= {ref.split("/", 1)[1][: -len(SUFFIX)] for ref in store.list(CONTAINER) if ref.endswith(SUFFIX)}
    return sorted(name for name in found if _NAME.fullmatch(name))
