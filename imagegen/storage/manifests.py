"""Manifests in blob storage: written in one upload, read back, notifications added beside.

The model is `imagegen.records.manifest`; this module is the only one that reads or writes
manifest blobs.
"""

from __future__ import annotations

from imagegen.core.blob_names import manifest_ref
from imagegen.records.manifest import Manifest, manifest_json, parse_manifest
from imagegen.records.notifications import NotifyRecord
from imagegen.storage.blobs import BlobChanged, BlobNotFound, BlobStore


def upload_manifest(store: BlobStore, manifest: Manifest) -> str:
    """Upload the whole manifest in one `put` to `manifests/{job_id}.json`; return its URL.

    The notifications already recorded in the stored manifest are kept: webhook calls run
    beside the orchestration and record themselves (`record_notification`), so a later
    write must not drop them. Both writers use conditional puts, so neither loses the other's.
    """
    ref = manifest_ref(manifest.job_id)
    for _ in range(10):
        try:
            data, etag = store.get_with_etag(ref)
        except BlobNotFound:
            return store.put(ref, manifest_json(manifest), "application/json")
        try:
            recorded = parse_manifest(data).notifications
        except ValueError:
            recorded = []
        merged = manifest.model_copy(update={"notifications": _merge(recorded, manifest.notifications)})
        try:
            return store.put(ref, manifest_json(merged), "application/json", if_match=etag)
        except BlobChanged:
            continue
    raise BlobChanged(ref, "")


def record_notification(store: BlobStore, job_id: str, record: NotifyRecord) -> None:
    """Add one webhook call to the stored manifest (conditional put, retried on a race)."""
    ref = manifest_ref(job_id)
    for _ in range(10):
        data, etag = store.get_with_etag(ref)
        manifest = parse_manifest(data)
        updated = manifest.model_copy(update={"notifications": _merge(manifest.notifications, [record])})
        try:
            store.put(ref, manifest_json(updated), "application/json", if_match=etag)
            return
        except BlobChanged:
            continue
    raise BlobChanged(ref, "")


def _merge(first: list[NotifyRecord], second: list[NotifyRecord]) -> list[NotifyRecord]:
    seen = {(r.event, r.at) for r in first}
    return [*first, *(r for r in second if (r.event, r.at) not in seen)]


def read_manifest(store: BlobStore, job_id: str) -> Manifest:
    """The manifest of `job_id`; raises `imagegen.storage.blobs.BlobNotFound` when there is none."""
    return parse_manifest(store.get(manifest_ref(job_id)))
