"""`generate_batch` and `render_batch` decide what a job does: played through devhost's pure core.

No host, no storage, no HTTP: each job is played by `driver.play` with scripted activities
(`scripted`), in milliseconds. Each test checks what a user or operator would notice: the
calls the job made and their requests, the manifest request's records, the custom status
a poller sees, and the summary it returns. (Review is in test_review_step.py.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from imagegen.jobs.spec import DEFAULT_STRENGTH, parse_job
from imagegen.jobs.variants import expand
from imagegen.records.messages import (
    BatchRequest,
    ModerateImageRequest,
    ModerateTextRequest,
    NotifyJobRequest,
    WriteManifestRequest,
)
from tests.orchestrations import scripted
from tests.orchestrations.driver import JOB_ID, NO_ANSWER, T0, ActivityFailed, Raise, play, request_of, started

BIKE = {"name": "bikes", "prompts": [{"text": "a red bicycle", "negative": "blurry"}, {"text": "a blue car", "negative": "blurry"}],
        "variants": {"seeds": 1, "sizes": ["64x64", "128x64"], "steps": 2}}


def ids(job: dict) -> list[str]:
    return [variant.id for variant in expand(parse_job(job))]


def manifest_of(run) -> WriteManifestRequest:
    [request] = run.requests("write_manifest", WriteManifestRequest)
    return request


def test_a_job_checks_its_prompts_once_renders_one_batch_per_size_and_writes_its_manifest():
    run = play(request_of(BIKE), scripted.activities())

    assert run.names() == ["moderate_text", "render_batch", "render_batch", "write_manifest"]
    # Every distinct prompt and negative prompt, in one call, in the order the variants use them.
    [moderate] = run.requests("moderate_text", ModerateTextRequest)
    assert moderate == ModerateTextRequest(job_id=JOB_ID, texts=["a red bicycle", "blurry", "a blue car"])
    # One batch per size (a GPU call takes one size), each generated once with the same request.
    batches = run.requests("render_batch", BatchRequest)
    assert [(b.batch.id, [v.id for v in b.batch.variants]) for b in batches] == [
        ("b000", [ids(BIKE)[0], ids(BIKE)[2]]), ("b001", [ids(BIKE)[1], ids(BIKE)[3]])]
    assert {(v.width, v.height) for v in batches[1].batch.variants} == {(128, 64)}
    assert run.requests("generate_images", BatchRequest) == batches
    assert set(run.recording) == {JOB_ID, f"{JOB_ID}:b000", f"{JOB_ID}:b001"}

    manifest = manifest_of(run)
    assert [(r.variant.id, r.status, r.ref) for r in manifest.records] == [
        (v, "ok", f"outputs/{JOB_ID}/{v}.png") for v in ids(BIKE)]  # in job order, whatever the batches
    assert manifest.created == T0.isoformat() and manifest.finished > manifest.created
    assert set(manifest.input_verdicts) == {"a red bicycle", "blurry", "a blue car"}
    assert (manifest.reasons, manifest.review, manifest.decisions) == ([], None, {})
    assert manifest.job == parse_job(BIKE)

    summary = run.summary()
    assert (summary.status, summary.total, summary.ok, summary.failed) == ("completed", 4, 4, 0)
    assert (summary.manifest, summary.reasons, summary.approved) == (f"manifests/{JOB_ID}.json", [], None)
    progress = run.progress()
    assert [p.phase for p in progress] == ["moderating inputs", "generating", "writing manifest", "done"]
    assert (progress[0].total, progress[0].done) == (4, 0)
    assert (progress[-1].done, progress[-1].ok, progress[-1].status, progress[-1].summary) == (4, 4, None, None)


def test_max_batch_cuts_a_size_into_gpu_batches_of_at_most_that_many():
    job = {**BIKE, "variants": {"seeds": 3, "sizes": ["64x64"], "steps": 2}}
    run = play(request_of(job, max_batch=4), scripted.activities())
    assert [len(b.batch.variants) for b in run.requests("render_batch", BatchRequest)] == [4, 2]
    assert run.summary().ok == 6


def test_generate_images_warnings_reach_the_manifest_once_each():
    warning = "`prompts[0].text` is longer than 77 tokens and is truncated"
    run = play(request_of(BIKE), scripted.activities(generate_images=scripted.generate_images(warnings=[warning])))
    assert manifest_of(run).warnings == [warning]  # two batches reported it


def test_an_image_checked_unsafe_is_held_and_the_job_is_partial():
    blocked = ids(BIKE)[2]
    run = play(request_of(BIKE), scripted.activities(generate_images=scripted.generate_images(blocked=[blocked])))
    record = {r.variant.id: r for r in manifest_of(run).records}[blocked]
    assert (record.status, record.ref, record.verdict.reasons) == ("blocked", f"quarantine/{JOB_ID}/{blocked}.png",
                                                                   ["nsfw: 0.99"])
    summary = run.summary()
    assert (summary.status, summary.ok, summary.blocked) == ("partial", 3, 1)


def test_a_blocked_prompt_rejects_the_whole_job_before_anything_is_generated():
    run = play(request_of(BIKE), scripted.activities(moderate_text=scripted.moderate_text(blocked=["a blue car"])))

    assert run.names() == ["moderate_text", "write_manifest"]  # no render_batch, no GPU
    manifest = manifest_of(run)
    assert [(r.status, r.ref, r.image) for r in manifest.records] == [("blocked", None, None)] * 4
    assert manifest.input_verdicts["a blue car"].status == "blocked"
    assert manifest.input_verdicts["a red bicycle"].status == "safe"
    summary = run.summary()
    assert (summary.status, summary.total, summary.blocked, summary.ok) == ("rejected", 4, 4, 0)
    assert summary.reasons == ["prompt 'a blue car' is blocked: blocklist: golden"]
    assert [p.phase for p in run.progress()] == ["moderating inputs", "writing manifest", "done"]


def test_a_blocked_negative_prompt_rejects_the_job_too():
    run = play(request_of(BIKE), scripted.activities(moderate_text=scripted.moderate_text(blocked=["blurry"])))
    assert run.summary().status == "rejected"
    assert run.summary().reasons == ["prompt 'blurry' is blocked: blocklist: golden"]


def test_a_batch_failing_every_try_is_tried_three_times_then_its_variants_fail_and_the_job_is_partial():
    run = play(request_of(BIKE), scripted.activities(generate_images=scripted.generate_images(failing=["b001"])))

    tries = [call for call in run.calls("generate_images") if call.instance_id == f"{JOB_ID}:b001"]
    assert len(tries) == 3 and all(call.input == tries[0].input for call in tries)
    assert all(later.at - earlier.at >= timedelta(seconds=3) for earlier, later in zip(tries, tries[1:]))
    assert len(run.calls("generate_images")) == 4  # b000 once

    failed = ids(BIKE)[1::2]  # the 128x64 batch
    records = {r.variant.id: r for r in manifest_of(run).records}
    assert [(records[v].status, records[v].error, records[v].ref) for v in failed] == [
        ("failed", "CUDA out of memory", None)] * 2
    summary = run.summary()  # the orchestration itself completed: a failed batch is reported, not raised
    assert (summary.status, summary.ok, summary.failed) == ("partial", 2, 2)
    assert summary.reasons == [f"{v} failed: CUDA out of memory" for v in failed]
    assert (run.progress()[-1].failed, run.progress()[-1].ok) == (2, 2)


def test_a_batch_failing_once_is_retried_and_the_job_completes():
    tries = []
    generate = scripted.generate_images()

    def flaky(payload: dict):
        tries.append(payload["batch"]["id"])
        if tries.count(payload["batch"]["id"]) == 1 and payload["batch"]["id"] == "b000":
            raise ActivityFailed("replica restarted")
        return generate(payload)

    run = play(request_of(BIKE), scripted.activities(generate_images=flaky))
    assert sorted(tries) == ["b000", "b000", "b001"]
    assert (run.summary().status, run.summary().ok, run.summary().reasons) == ("completed", 4, [])


def test_a_batch_the_gpu_pool_never_answers_fails_after_a_day_without_another_try():
    def lost(payload: dict):
        return NO_ANSWER if payload["batch"]["id"] == "b001" else scripted.generate_images()(payload)

    run = play(request_of(BIKE), scripted.activities(generate_images=lost))

    orders = [call for call in run.calls("order_render") if call.instance_id == f"{JOB_ID}:b001"]
    assert len(orders) == 1  # an order lost outright is not made again: the pool may yet be rendering it
    records = {r.variant.id: r for r in manifest_of(run).records}
    assert [(records[v].status, records[v].error) for v in ids(BIKE)[1::2]] == [
        ("failed", "the GPU pool did not answer within 24 hours")] * 2
    gave_up_at = datetime.fromisoformat(run.episodes(f"{JOB_ID}:b001")[-1]["at"].replace("Z", "+00:00"))
    assert gave_up_at >= T0 + timedelta(hours=24)
    assert run.summary().status == "partial"


def test_a_batch_that_cannot_be_ordered_fails_with_why_and_the_others_still_render():
    def storage_down(payload: dict) -> None:
        if payload["batch"]["batch"]["id"] == "b001":
            raise ActivityFailed("storage unavailable")

    run = play(request_of(BIKE), {**scripted.activities(), "order_render": storage_down})

    orders = [call for call in run.calls("order_render") if call.instance_id == f"{JOB_ID}:b001"]
    assert len(orders) == 9  # three tries, each ordered up to three times
    records = {r.variant.id: r for r in manifest_of(run).records}
    assert [(records[v].status, records[v].error) for v in ids(BIKE)[1::2]] == [
        ("failed", "the batch could not be ordered: storage unavailable")] * 2
    assert [records[v].status for v in ids(BIKE)[0::2]] == ["ok", "ok"]


def test_cancel_while_the_batches_run_records_what_was_made_and_cancels_the_rest():
    # Each batch makes its first image, then sees the cancel marker and stops.
    run = play(request_of(BIKE), scripted.activities(generate_images=scripted.generate_images(made=1)),
               [Raise("cancel", {"by": "user"}, started("render_batch"))])

    assert run.names() == ["moderate_text", "render_batch", "render_batch", "write_manifest"]
    manifest = manifest_of(run)
    assert [r.status for r in manifest.records] == ["ok", "ok", "cancelled", "cancelled"]
    assert [r.ref for r in manifest.records if r.status == "cancelled"] == [None, None]
    assert manifest.reasons == ["cancelled by user"]
    summary = run.summary()
    assert (summary.status, summary.total, summary.ok, summary.cancelled) == ("cancelled", 4, 2, 2)
    assert (run.progress()[-1].done, run.progress()[-1].cancelled) == (4, 2)


def test_cancel_before_the_batches_report_still_writes_the_manifest_of_every_variant():
    # The cancel event comes in with the prompt check's result: the batches are still started
    # (they find the cancel marker and make nothing), and every variant is recorded cancelled.
    run = play(request_of(BIKE), scripted.activities(generate_images=scripted.generate_images(made=0)),
               [Raise("cancel", {"by": "user"}, lambda episode: bool(episode.activities))])
    assert [r.status for r in manifest_of(run).records] == ["cancelled"] * 4
    assert (run.summary().status, run.summary().cancelled) == ("cancelled", 4)


IMG2IMG = {"name": "shoes", "prompts": [{"text": "a shoe, watercolour", "image": "shoe.png", "strength": 0.6},
                                        {"text": "a shoe, charcoal", "image": "shoe.png"},
                                        {"text": "a boot", "image": "prompts/boot.png"}],
           "variants": {"seeds": 1, "sizes": ["64x64"], "steps": 2}}


def test_img2img_checks_each_source_image_once_and_renders_from_it():
    run = play(request_of(IMG2IMG), scripted.activities())

    assert run.names() == ["moderate_text", "moderate_image", "moderate_image", "render_batch", "render_batch",
                           "render_batch", "write_manifest"]
    assert run.requests("moderate_image", ModerateImageRequest) == [  # each distinct image once, by name
        ModerateImageRequest(job_id=JOB_ID, image="inputs/shoe.png"),
        ModerateImageRequest(job_id=JOB_ID, image="prompts/boot.png")]
    rendered = [v for b in run.requests("render_batch", BatchRequest) for v in b.batch.variants]
    assert [(v.image, v.strength) for v in rendered] == [("inputs/shoe.png", 0.6), ("inputs/shoe.png", DEFAULT_STRENGTH),
                                                          ("prompts/boot.png", DEFAULT_STRENGTH)]
    assert manifest_of(run).input_verdicts["inputs/shoe.png"].status == "safe"
    assert run.summary().status == "completed"


def test_a_blocked_source_image_rejects_the_whole_job():
    run = play(request_of(IMG2IMG),
               scripted.activities(moderate_image=scripted.moderate_image(blocked=["prompts/boot.png"])))

    assert run.names() == ["moderate_text", "moderate_image", "moderate_image", "write_manifest"]
    assert [r.status for r in manifest_of(run).records] == ["blocked"] * 3
    summary = run.summary()
    assert (summary.status, summary.blocked) == ("rejected", 3)
    assert summary.reasons == ["image prompts/boot.png is blocked: nsfw: 0.97"]
    assert manifest_of(run).input_verdicts["prompts/boot.png"].status == "blocked"


MASKED = {"name": "shoes", "prompts": [{"text": "a shoe, new laces", "image": "shoe.png", "mask": "laces.png"}],
          "variants": {"seeds": 1, "sizes": ["64x64"], "steps": 2}}


def test_a_mask_is_checked_like_a_source_image_and_a_blocked_mask_rejects_the_job():
    run = play(request_of(MASKED), scripted.activities())
    assert run.requests("moderate_image", ModerateImageRequest) == [
        ModerateImageRequest(job_id=JOB_ID, image="inputs/laces.png"),
        ModerateImageRequest(job_id=JOB_ID, image="inputs/shoe.png")]
    (rendered,) = [v for b in run.requests("render_batch", BatchRequest) for v in b.batch.variants]
    assert (rendered.image, rendered.mask, rendered.strength) == ("inputs/shoe.png", "inputs/laces.png", 1.0)
    assert manifest_of(run).records[0].variant.mask == "inputs/laces.png"

    blocked = play(request_of(MASKED),
                   scripted.activities(moderate_image=scripted.moderate_image(blocked=["inputs/laces.png"])))
    assert blocked.summary().reasons == ["image inputs/laces.png is blocked: nsfw: 0.97"]
    assert [r.status for r in manifest_of(blocked).records] == ["blocked"]


HOOKED = {**BIKE, "notify": {"url": "https://hooks.example.com/bikes/secret-token"}}


def test_a_job_with_a_webhook_shows_its_end_then_tells_the_webhook():
    run = play(request_of(HOOKED), scripted.activities())

    assert run.names()[-2:] == ["write_manifest", "notify_job"]
    [told] = run.requests("notify_job", NotifyJobRequest)
    assert told == NotifyJobRequest(job_id=JOB_ID, name="bikes", event="ended", status="completed",
                                    counts={"total": 4, "ok": 4, "blocked": 0, "failed": 0, "unchecked": 0,
                                            "cancelled": 0},
                                    url="https://hooks.example.com/bikes/secret-token")
    # The poller sees the job ended (status and summary) before the webhook call is made.
    [scheduled] = [e for e in run.episodes() if any(call[1] == "notify_job" for call in e["calls"])]
    assert scheduled["custom_status"]["status"] == "completed"
    assert scheduled["custom_status"]["summary"] == run.output
    assert run.summary().status == "completed"


def test_the_deployments_webhook_url_never_enters_the_history():
    url = "https://ops.example.com/hooks/operator-secret"
    run = play(request_of(BIKE, notify_url=url), scripted.activities())
    [told] = run.requests("notify_job", NotifyJobRequest)
    assert (told.event, told.url) == ("ended", None)  # the activity reads it from settings
    assert "operator-secret" not in repr(run.recording)


def test_a_job_without_a_webhook_calls_none():
    assert "notify_job" not in play(request_of(BIKE), scripted.activities()).names()


def test_a_webhook_that_fails_never_fails_the_job():
    failing = scripted.notify_job(status="failed", error="HTTP 500 after 3 tries")
    run = play(request_of(HOOKED), scripted.activities(notify_job=failing))
    assert run.runtime_status == "Completed"
    assert (run.summary().status, run.summary().ok) == ("completed", 4)


def test_a_notify_activity_that_fails_does_not_fail_the_job():
    def crashes(payload: dict):
        raise ActivityFailed("worker process exited")

    run = play(request_of(HOOKED), scripted.activities(notify_job=crashes))
    assert run.runtime_status == "Completed"


def test_the_summary_carries_the_jobs_gpu_seconds_and_its_cost_from_the_manifest():
    def costed(payload: dict):
        answer = scripted.write_manifest()(payload)
        return answer.model_copy(update={"gpu_seconds": 12.5, "estimated_cost": 0.0118})

    run = play(request_of(BIKE), scripted.activities(write_manifest=costed))
    assert (run.summary().gpu_seconds, run.summary().estimated_cost) == (12.5, 0.0118)
