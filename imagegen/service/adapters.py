"""A job's LoRA adapters: checked at submit, read for its batches.

At submit (`triggers.jobs.fit_to_model`) each adapter a job names is found (the folder
`IMAGEGEN_ADAPTERS_DIR`, else the `adapters` container), held to the size limit before it
is read, checked as a LoRA safetensors file for the job's model
(imagegen.generation.adapters), and hashed: the job's variants carry each adapter's name,
sha256 and weight (`AdapterUse`). When a batch is made, `files_for` reads them again and
refuses a file that changed since: the images are made with the file the manifest names.
"""

from __future__ import annotations

import hashlib

from imagegen.core.field_errors import show_value
from imagegen.core.types import AdapterUse, FieldError, JobValidationError, Variant
from imagegen.generation.adapters import AdapterProblem, check_fit, header_length, read_header
from imagegen.generation.families import ModelFacts
from imagegen.jobs.spec import AdapterSpec
from imagegen.service.services import Services
from imagegen.storage import adapters as adapter_files
from imagegen.storage.blobs import BlobStore

MOST_NAMES_SHOWN = 20


def _store(services: Services) -> BlobStore | None:
    settings = services.settings
    if not (settings.storage_connection_string or settings.storage_blob_service_uri):
        return None  # a deployment without storage: only the local folder
    return services.store


def resolve(adapters: list[AdapterSpec], services: Services, facts: ModelFacts, model: str) -> list[AdapterUse]:
    """Each adapter the job names, found, checked for `facts`' model (named `model`) and
    hashed, in the job's order; JobValidationError naming `adapters[i].name` for each that
    is unknown, too large, not a LoRA safetensors file, or made for another model."""
    if not adapters:
        return []
    settings = services.settings
    store = _store(services)
    uses: list[AdapterUse] = []
    errors: list[FieldError] = []
    for index, adapter in enumerate(adapters):
        path = f"adapters[{index}].name"
        try:
            found = adapter_files.find(adapter.name, store, settings)
        except adapter_files.AdapterNotFound:
            known = adapter_files.names(store, settings)
            shown = ", ".join(known[:MOST_NAMES_SHOWN]) + (", ..." if len(known) > MOST_NAMES_SHOWN else "")
            errors.append(FieldError(path=path, rule="adapter_unknown", message=(
                f"`{path}` names no adapter in the `adapters` container"
                + (" or `IMAGEGEN_ADAPTERS_DIR`" if settings.adapters_dir else "")
                + f" ({'known: ' + shown if known else 'there are none'}; `imagegen adapters put FILE` uploads one), "
                f"got {show_value(adapter.name)}")))
            continue
        try:
            if found.size > settings.max_adapter_bytes:  # refused before it is read
                read_header(b"", size=found.size, max_bytes=settings.max_adapter_bytes)
            start, digest = _start_and_sha256(found, store)
            check_fit(read_header(start, size=found.size, max_bytes=settings.max_adapter_bytes), facts, model)
        except AdapterProblem as problem:
            errors.append(FieldError(path=path, rule=problem.rule,
                                     message=f"`{path}`: adapter {adapter.name!r} {problem.message}"))
            continue
        uses.append(AdapterUse(name=adapter.name, sha256=digest, weight=adapter.weight))
    if errors:
        raise JobValidationError(errors)
    return uses


def _start_and_sha256(found: adapter_files.AdapterFile, store: BlobStore | None) -> tuple[bytes, str]:
    """The file's first bytes, its header whole (as far as the file has it), and the sha256
    of all of it, read a chunk at a time: a large adapter is never held in memory at submit."""
    digest = hashlib.sha256()
    start = b""
    for chunk in adapter_files.chunks(found, store):
        digest.update(chunk)
        wanted = header_length(start) if len(start) >= 8 else 8
        while len(start) < wanted and chunk:
            taken, chunk = chunk[: wanted - len(start)], chunk[wanted - len(start):]
            start += taken
            wanted = header_length(start) if len(start) >= 8 else 8
    return start, digest.hexdigest()


def files_for(variants: list[Variant], services: Services) -> dict[str, bytes]:
    """The bytes of every adapter the variants use, by name; ValueError for one that is
    gone or is no longer the file checked at submit (its sha256 differs)."""
    settings = services.settings
    store = _store(services)
    files: dict[str, bytes] = {}
    for use in {use for variant in variants for use in variant.adapters}:
        if use.name in files:
            continue
        try:
            data = adapter_files.read(adapter_files.find(use.name, store, settings), store)
        except adapter_files.AdapterNotFound:
            raise ValueError(f"adapter {use.name!r} was removed after the job was submitted") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != use.sha256:
            raise ValueError(f"adapter {use.name!r} changed after the job was submitted: its sha256 is {digest}, "
                             f"the job was checked with {use.sha256}; submit the job again")
        files[use.name] = data
    return files
