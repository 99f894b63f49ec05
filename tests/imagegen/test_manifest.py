"""imagegen.records.manifest: the model's rules, computed totals, the schema file, and a real write."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagegen.core.blob_names import manifest_ref, output_ref, quarantine_ref
from imagegen.core.types import Variant, Verdict
from imagegen.records.manifest import Manifest, ManifestVariant, build_manifest, manifest_schema
from imagegen.storage.blobs import BlobNotFound, BlobStore
from imagegen.storage.manifests import read_manifest, upload_manifest

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"
CREATED = datetime(2026, 11, 21, 13, 0, 0, tzinfo=timezone.utc)
FINISHED = datetime(2026, 11, 21, 13, 0, 42, tzinfo=timezone.utc)
SAFE = Verdict(status="safe", provider="local", severities={"Violence": 0})
BLOCKED = Verdict(status="blocked", provider="azure", severities={"Violence": 6},
                  reasons=["Violence severity 6 >= 4"])
UNCHECKED = Verdict(status="unchecked", provider="azure", reasons=["Content Safety kept failing: 503"])


def variant(index: int, **changes) -> Variant:
    fields = dict(id=f"v{index:03d}", index=index, prompt_index=0, prompt="a red sneaker, studio light",
                  base_prompt="a red sneaker", style="studio", seed=1000 + index, width=512, height=512,
                  guidance=7.5, steps=20, scheduler="dpmpp")
    return Variant(**(fields | changes))


def entry(job_id: str, index: int, status: str, **changes) -> ManifestVariant:
    """A realistic manifest entry for each outcome the orchestrator can reach."""
    data = b"image-%d" % index
    image = dict(sha256=hashlib.sha256(data).hexdigest(), image_width=512, image_height=512, seconds=1.25,
                 model="tiny", device="cpu", input_verdict=SAFE)
    outcome = {
        "ok": dict(image, blob=output_ref(job_id, f"v{index:03d}", "png"), output_verdict=SAFE),
        "blocked": dict(image, blob=quarantine_ref(job_id, f"v{index:03d}", "png"), output_verdict=BLOCKED),
        "unchecked": dict(image, blob=quarantine_ref(job_id, f"v{index:03d}", "png"), output_verdict=UNCHECKED),
        "failed": dict(model="tiny", device="cpu", input_verdict=SAFE, error="CUDA out of memory"),
        "cancelled": dict(input_verdict=SAFE),
    }[status]
    return ManifestVariant.from_variant(variant(index), status=status, **(outcome | changes))


def manifest(job_id: str = "job-1", variants=None, **changes) -> Manifest:
    fields = dict(job_id=job_id, name="sneakers", source="http",
                  job={"name": "sneakers", "prompts": [{"text": "a red sneaker"}]},
                  created_at=CREATED, finished_at=FINISHED,
                  variants=variants if variants is not None else [
                      entry(job_id, 0, "ok"), entry(job_id, 1, "ok"), entry(job_id, 2, "blocked"),
                      entry(job_id, 3, "unchecked"), entry(job_id, 4, "failed"),
                  ])
    return build_manifest(**(fields | changes))


def test_totals_and_status_are_computed_from_the_variants():
    result = manifest()
    assert result.status == "partial"
    assert result.totals.model_dump() == dict(variants=5, ok=2, blocked=1, failed=1, unchecked=1, cancelled=0,
                                              images=4, seconds=5.0, estimated_cost=None, approved=0, rejected=0,
                                              undecided=0)
    costed = result.model_copy(update={"gpu_price_per_hour": 3.6})  # 5 GPU seconds at 3.60 an hour
    assert costed.totals.estimated_cost == 0.005
    assert manifest(variants=[entry("job-1", 0, "ok"), entry("job-1", 1, "ok")]).status == "completed"
    cancelled = manifest(variants=[entry("job-1", 0, "ok"), entry("job-1", 1, "cancelled")])
    assert cancelled.status == "cancelled" and cancelled.totals.cancelled == 1 and cancelled.totals.images == 1


def test_a_job_blocked_at_input_is_rejected():
    blocked_at_input = ManifestVariant.from_variant(variant(0), status="blocked", input_verdict=BLOCKED)
    result = manifest(variants=[blocked_at_input], reasons=["prompt 0 blocked: Violence severity 6 >= 4"])
    assert result.status == "rejected"
    assert result.totals.images == 0 and result.totals.blocked == 1


def test_callers_cannot_pass_totals_or_status():
    with pytest.raises(ValidationError, match="totals"):
        Manifest(**manifest().model_dump(exclude={"status"}))
    with pytest.raises(ValidationError, match="status"):
        Manifest(**manifest().model_dump(exclude={"totals"}))


@pytest.mark.parametrize(
    ("status", "changes", "message"),
    [
        # Fail closed: nothing reaches outputs/ without a safe output verdict. Each message
        # says which variant it is about (a field's own error names the field instead).
        ("ok", dict(output_verdict=UNCHECKED), "status `ok` needs a `safe` output verdict, got 'unchecked'"),
        ("ok", dict(output_verdict=None), "status `ok` needs a `safe` output verdict, got None"),
        ("ok", dict(blob=quarantine_ref("job-1", "v000", "png")), "status `ok` needs its image under outputs/"),
        ("blocked", dict(blob=output_ref("job-1", "v000", "png")), "a `blocked` image must be under quarantine/"),
        ("unchecked", dict(blob=output_ref("job-1", "v000", "png")), "a `unchecked` image must be under quarantine/"),
        ("failed", dict(error=None), "a `failed` variant needs `error` saying why"),
        ("ok", dict(sha256="abc"), "`sha256` must be 64 lowercase hex digits, got 'abc'"),
        ("ok", dict(blob="output/job-1/v000.png"), "blob\n  Value error, blob ref `output/job-1/v000.png` names unknown container 'output'"),
    ],
)
def test_variant_status_must_match_where_its_image_is(status, changes, message):
    with pytest.raises(ValidationError) as error:
        entry("job-1", 0, status, **changes)
    assert message in str(error.value)
    assert message.startswith("blob\n") or f"variant `v000`: {message}" in str(error.value)


def test_manifest_rules_name_the_field():
    with pytest.raises(ValidationError, match="`job_id` must be letters, digits"):
        manifest(job_id="../etc", variants=[])
    with pytest.raises(ValidationError, match="`finished_at` .* must not be before `created_at`"):
        manifest(finished_at=datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc))
    with pytest.raises(ValidationError, match="unique ids, got `v000` twice"):
        manifest(variants=[entry("job-1", 0, "ok"), entry("job-1", 0, "ok")])
    with pytest.raises(ValidationError, match="source"):
        manifest(source="email")


def test_naive_orchestrator_times_are_utc():
    result = manifest(created_at="2026-11-21T13:00:00", finished_at=datetime(2026, 11, 21, 13, 0, 42))
    assert result.created_at == CREATED and result.finished_at == FINISHED
    assert json.loads(result.model_dump_json())["created_at"] == "2026-11-21T13:00:00Z"


def test_from_variant_keeps_every_setting_needed_to_remake_the_image():
    img2img = variant(7, image="inputs/sneaker.png", strength=0.6, format="webp", negative="blurry")
    result = ManifestVariant.from_variant(img2img, status="failed", error="source image unreadable")
    assert (result.source_image, result.strength, result.format, result.negative) == (
        "inputs/sneaker.png", 0.6, "webp", "blurry")
    assert (result.seed, result.steps, result.guidance, result.scheduler, result.width) == (1007, 20, 7.5, "dpmpp", 512)


def test_schema_file_is_up_to_date():
    expected = json.dumps(manifest_schema(), indent=2) + "\n"
    assert SCHEMA_FILE.read_text() == expected, (
        "docs/manifest.schema.json is stale: run "
        "`.venv/bin/python -m imagegen.records.manifest > docs/manifest.schema.json`"
    )
    assert {"status", "totals", "variants"} <= set(manifest_schema()["properties"])


def test_write_then_read_back_is_equal(storage_connection_string):
    store = BlobStore.from_connection_string(storage_connection_string)
    store.ensure_containers()
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    written = manifest(job_id)
    url = upload_manifest(store, written)
    assert url == store.url(manifest_ref(job_id))
    assert read_manifest(store, job_id) == written
    document = json.loads(store.get(manifest_ref(job_id)))
    assert document["status"] == "partial" and document["totals"]["ok"] == 2
    # A retried write replaces the whole document: one blob, the latest content.
    rewritten = manifest(job_id, warnings=["prompt 0 truncated to 77 tokens"])
    upload_manifest(store, rewritten)
    assert store.list("manifests", prefix=job_id) == [manifest_ref(job_id)]
    assert read_manifest(store, job_id).warnings == ["prompt 0 truncated to 77 tokens"]
    with pytest.raises(BlobNotFound):
        read_manifest(store, "job-never-written")


def test_content_credentials_need_an_image():
    credentials = {"manifest_label": "urn:c2pa:1", "signer": "CN=s"}
    assert entry("job-1", 0, "ok", content_credentials=credentials).content_credentials.signer == "CN=s"
    with pytest.raises(ValueError, match="`content_credentials` is set but there is no image"):
        entry("job-1", 4, "failed", content_credentials=credentials)


# --- review before publish ---------------------------------------------------------------------

REVIEW = {"state": "awaiting", "timeout": "72h", "on_timeout": "reject", "deadline": FINISHED}


def approved(job_id: str, index: int, **changes) -> dict:
    return {"decision": "approved", "reviewer": "ana@contoso.com", "at": FINISHED, "note": "hero shot",
            "published": f"published/{job_id}/v{index:03d}.png", **changes}


def test_a_reviewed_job_counts_decisions_over_its_ok_images():
    variants = [entry("job-1", 0, "ok", review=approved("job-1", 0)),
                entry("job-1", 1, "ok", review={**approved("job-1", 1), "decision": "rejected", "published": None}),
                entry("job-1", 2, "ok"), entry("job-1", 3, "blocked")]
    waiting = manifest(variants=variants, review=REVIEW)
    assert waiting.status == "awaiting_review"
    assert waiting.totals.model_dump(include={"approved", "rejected", "undecided"}) == {
        "approved": 1, "rejected": 1, "undecided": 1}
    assert manifest(variants=variants, review={**REVIEW, "state": "done", "ended_by": "finish"}).status == "partial"
    assert manifest(variants=variants, review={**REVIEW, "state": "cancelled", "ended_by": "cancel"}).status == "cancelled"


@pytest.mark.parametrize(("status", "review", "words"), [
    ("ok", {"decision": "rejected", "published": "published/job-1/v000.png"}, "only an approved image is published"),
    ("ok", {"published": "outputs/job-1/v000.png"}, "must be under published/"),
    ("blocked", {}, "only an `ok` image is reviewed"),
])
def test_only_approved_ok_images_are_published(status, review, words):
    with pytest.raises(ValidationError, match=words):
        entry("job-1", 0, status, review=approved("job-1", 0, **review))


def test_a_rewrite_keeps_the_notifications_recorded_beside_it(storage_connection_string):
    from imagegen.records.notifications import NotifyRecord
    from imagegen.storage.manifests import record_notification

    store = BlobStore.from_connection_string(storage_connection_string)
    store.ensure_containers()
    job_id = f"job-{uuid.uuid4().hex[:12]}"
    upload_manifest(store, manifest(job_id, review=REVIEW))
    sent = NotifyRecord(event="awaiting_review", host="hooks.example.com", status="sent", attempts=1,
                        http_status=200, at=FINISHED)
    record_notification(store, job_id, sent)
    upload_manifest(store, manifest(job_id, review={**REVIEW, "state": "done", "ended_by": "timeout"}))
    again = read_manifest(store, job_id)
    assert again.review.state == "done" and again.notifications == [sent]
