"""What storage must hold once a job has ended, whatever happened to it.

Used by the end-to-end tests after a job ends (completed, partial, cancelled or crashed):

- every blob under `outputs/{job}/` has a manifest entry at that name with a `safe` verdict;
- every image the manifest names exists, at the name it gives;
- nothing is left in `quarantine/{job}/` without a manifest entry at that name
  (blocked and unchecked images stay there, recorded);
- every blob under `published/{job}/` is the copy of an `ok` image a reviewer approved,
  with the same bytes, and every published copy the manifest names exists.
"""

from __future__ import annotations

from imagegen.storage.blobs import BlobStore


def storage_problems(store: BlobStore, job_id: str, manifest: dict) -> list[str]:
    """Every way the job's blobs and its manifest disagree; empty when they agree."""
    recorded = {v["blob"]: v for v in manifest["variants"] if v.get("blob")}
    outputs = store.list("outputs", f"{job_id}/")
    quarantine = store.list("quarantine", f"{job_id}/")
    problems = []
    for ref in outputs:
        variant = recorded.get(ref)
        if variant is None:
            problems.append(f"{ref} is published but the manifest does not record it")
        elif (variant.get("output_verdict") or {}).get("status") != "safe":
            problems.append(f"{ref} is published without a safe verdict: {variant.get('output_verdict')}")
    problems += [f"{ref} is in quarantine without a manifest entry" for ref in quarantine if ref not in recorded]
    present = set(outputs) | set(quarantine)
    problems += [f"the manifest names {ref} ({variant['status']}) but it does not exist"
                 for ref, variant in recorded.items() if ref not in present]
    published = store.list("published", f"{job_id}/")
    copies = {(v.get("review") or {}).get("published"): v for v in manifest["variants"]
              if (v.get("review") or {}).get("published")}
    for ref in published:
        variant = copies.get(ref)
        if variant is None or variant["status"] != "ok" or variant["review"]["decision"] != "approved":
            problems.append(f"{ref} is published without an approved ok entry naming it")
        elif store.get(ref) != store.get(variant["blob"]):
            problems.append(f"{ref} differs from {variant['blob']}, the image that was approved")
    problems += [f"the manifest names {ref} as published but it does not exist" for ref in copies if ref not in published]
    return problems


def assert_job_storage_consistent(store: BlobStore, job_id: str) -> None:
    """The invariants above for an ended job, its manifest read from storage as written."""
    from imagegen.storage.manifests import read_manifest

    manifest = read_manifest(store, job_id).model_dump(mode="json")
    problems = storage_problems(store, job_id, manifest)
    assert problems == [], f"job {job_id}: " + "; ".join(problems)
