"""The review's ledger: every pass of decisions people sent for a job, in the order they came.

The review route appends a pass here before it wakes the orchestration, and the
orchestration's `read_review_passes` activity reads the passes it has not seen. One JSON
list per job (`manifests/{job}.review-passes.json`), grown by conditional writes, so two
reviewers at once both land, in one order, and nothing is overwritten.
"""

from __future__ import annotations

import json

from imagegen.core.blob_names import review_passes_ref
from imagegen.records.review_book import ReviewDecision
from imagegen.storage.blobs import BlobChanged, BlobNotFound, BlobStore

# Writers that lose a race read again and retry; a pass is a small write, so a few tries
# cover many reviewers at once.
MOST_TRIES = 20


def append_review_pass(store: BlobStore, job_id: str, decision: ReviewDecision) -> int:
    """Record one pass after those already recorded; returns how many passes came before it."""
    ref = review_passes_ref(job_id)
    for _ in range(MOST_TRIES):
        try:
            data, etag = store.get_with_etag(ref)
        except BlobNotFound:
            data, etag = b"[]", None
        passes = json.loads(data)
        passes.append(decision.model_dump(mode="json"))
        text = json.dumps(passes).encode()
        try:
            if etag is None:
                store.put(ref, text, "application/json", if_missing=True)
            else:
                store.put(ref, text, "application/json", if_match=etag)
        except BlobChanged:
            continue  # another pass landed first: add ours after it
        return len(passes) - 1
    raise BlobChanged(ref, "")


def read_review_passes(store: BlobStore, job_id: str, after: int = 0) -> list[ReviewDecision]:
    """The passes recorded for `job_id` after the first `after`, in the order they came."""
    try:
        data = store.get(review_passes_ref(job_id))
    except BlobNotFound:
        return []
    return [ReviewDecision.model_validate(item) for item in json.loads(data)[after:]]
