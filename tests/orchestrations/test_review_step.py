"""The review step of `generate_batch`: reviewers' passes, the timeout, finish, cancel and the
webhook, played through devhost's pure core.

Each job makes its images (scripted activities, `scripted`), then waits for `review` events
that the script raises once the job shows `awaiting review`, or for its timer, which the
driver fires at the deadline when nothing else is due. The tests check what reviewers and
operators see: the manifest requests (review state, decisions), the images published, the
custom status while waiting, the webhook calls and the summary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import expand
from imagegen.records.messages import NotifyJobRequest, PublishImagesRequest, WriteManifestRequest
from tests.orchestrations import scripted
from tests.orchestrations.driver import JOB_ID, NO_ANSWER, REVIEW_PASS, T0, ActivityFailed, Raise, phase_is, play, request_of

JOB = {"name": "shoes", "prompts": [{"text": "a running shoe"}], "variants": {"seeds": 3, "sizes": ["64x64"], "steps": 2},
       "review": {"timeout": "1h"}}
V0, V1, V2 = [variant.id for variant in expand(parse_job(JOB))]
DECIDED_AT = (T0 + timedelta(minutes=5)).isoformat()
AWAITING = phase_is("awaiting review")


def decision(**fields) -> dict:
    """A `review` event's payload as the route raises it: reviewer and time filled in."""
    return {"approve": [], "reject": [], "note": "", "finish": False, "reviewer": "ana", "at": DECIDED_AT, **fields}


def passes(*decisions: dict) -> list[Raise]:
    """Each decision raised once the job (again) shows it awaits review."""
    return [Raise(REVIEW_PASS, d, AWAITING) for d in decisions]


def manifests(run) -> list[WriteManifestRequest]:
    return run.requests("write_manifest", WriteManifestRequest)


def changes(values: list) -> list:
    """`values` without the repeats in a row (the custom status also changes for other reasons)."""
    return [value for index, value in enumerate(values) if index == 0 or values[index - 1] != value]


def outputs(*variant_ids: str) -> dict[str, str]:
    return {v: f"outputs/{JOB_ID}/{v}.png" for v in variant_ids}


def published(variant_id: str) -> str:
    return f"published/{JOB_ID}/{variant_id}.png"


def deadline_of(run) -> datetime:
    """An hour after the images were made: when the first manifest (awaiting review) was asked for."""
    return run.calls("write_manifest")[0].at + timedelta(hours=1)


def test_a_job_with_review_waits_then_publishes_what_is_approved():
    run = play(request_of(JOB), scripted.activities(),
               passes(decision(approve=[V0, V1], reject=[V2], note="V2: wrong colour")))

    assert run.names() == ["moderate_text", "render_batch", "write_manifest", "read_review_passes", "publish_images",
                           "write_manifest"]
    deadline = deadline_of(run)
    waiting, final = manifests(run)
    assert waiting.review.model_dump() == {"state": "awaiting", "timeout": "1h", "on_timeout": "reject",
                                           "deadline": deadline, "ended_by": None}
    assert waiting.decisions == {} and [r.status for r in waiting.records] == ["ok"] * 3
    shown = [p for p in run.progress() if p.phase == "awaiting review"]
    assert {(p.review.model_dump_json(), p.deadline) for p in shown} == {
        ('{"approved":0,"rejected":0,"undecided":3}', deadline.isoformat())}  # until the pass is read
    assert [p.review_wake for p in shown] == [0, 1]  # each wake-up waits for a new event name

    assert run.requests("publish_images", PublishImagesRequest) == [
        PublishImagesRequest(job_id=JOB_ID, images=outputs(V0, V1))]
    assert final.review == waiting.review.model_copy(update={"state": "done", "ended_by": "all decided"})
    assert {v: d.model_dump() for v, d in final.decisions.items()} == {
        V0: {"decision": "approved", "reviewer": "ana", "at": DECIDED_AT, "note": "V2: wrong colour",
             "published": published(V0)},
        V1: {"decision": "approved", "reviewer": "ana", "at": DECIDED_AT, "note": "V2: wrong colour",
             "published": published(V1)},
        V2: {"decision": "rejected", "reviewer": "ana", "at": DECIDED_AT, "note": "V2: wrong colour", "published": None},
    }
    summary = run.summary()
    assert (summary.status, summary.ok, summary.approved, summary.rejected, summary.undecided) == ("completed", 3, 2, 1, 0)
    assert run.calls("write_manifest")[-1].at < deadline_of(run)  # it did not wait for the timer


def test_each_pass_is_published_and_written_to_the_manifest_as_it_lands():
    run = play(request_of(JOB), scripted.activities(),
               passes(decision(approve=[V0]), decision(reject=[V1]), decision(approve=[V2])))

    assert run.names()[2:] == ["write_manifest", "read_review_passes", "publish_images", "write_manifest",
                               "read_review_passes", "write_manifest", "read_review_passes", "publish_images",
                               "write_manifest"]
    assert [list(r.images) for r in run.requests("publish_images", PublishImagesRequest)] == [[V0], [V2]]
    assert [(m.review.state, {v: d.decision for v, d in m.decisions.items()}) for m in manifests(run)] == [
        ("awaiting", {}),
        ("awaiting", {V0: "approved"}),
        ("awaiting", {V0: "approved", V1: "rejected"}),
        ("done", {V0: "approved", V1: "rejected", V2: "approved"}),
    ]
    assert manifests(run)[1].decisions[V0].published == published(V0)  # the gallery can show the copy at once
    assert changes([p.review.model_dump() for p in run.progress() if p.phase == "awaiting review"]) == [
        {"approved": 0, "rejected": 0, "undecided": 3},
        {"approved": 1, "rejected": 0, "undecided": 2},
        {"approved": 1, "rejected": 1, "undecided": 1},
    ]
    assert (run.summary().approved, run.summary().rejected) == (2, 1)


def test_the_first_decision_on_an_image_wins_and_unknown_ids_are_ignored():
    run = play(request_of(JOB), scripted.activities(),
               passes(decision(approve=[V0]),
                      decision(reject=[V0, "v999-unknown"], approve=[V1], reviewer="bo", finish=True)))

    assert [list(r.images) for r in run.requests("publish_images", PublishImagesRequest)] == [[V0], [V1]]
    decisions = manifests(run)[-1].decisions
    assert (decisions[V0].decision, decisions[V0].reviewer) == ("approved", "ana")
    assert (decisions[V1].decision, decisions[V1].reviewer) == ("approved", "bo")
    assert set(decisions) == {V0, V1}
    assert (run.summary().approved, run.summary().rejected, run.summary().undecided) == (2, 0, 1)


def test_finish_ends_the_review_with_the_rest_undecided_and_unpublished():
    run = play(request_of(JOB), scripted.activities(), passes(decision(approve=[V0], finish=True)))

    assert [list(r.images) for r in run.requests("publish_images", PublishImagesRequest)] == [[V0]]
    final = manifests(run)[-1]
    assert (final.review.state, final.review.ended_by) == ("done", "finish")
    assert set(final.decisions) == {V0}
    summary = run.summary()
    assert (summary.status, summary.approved, summary.rejected, summary.undecided) == ("completed", 1, 0, 2)


def test_at_the_timeout_nobody_decided_and_every_image_is_rejected():
    run = play(request_of(JOB), scripted.activities())

    assert "publish_images" not in run.names()
    deadline = deadline_of(run)
    final = manifests(run)[-1]
    assert run.calls("write_manifest")[-1].at >= deadline  # the job waited the whole hour
    assert (final.review.state, final.review.ended_by) == ("done", "timeout")
    assert {v: d.model_dump() for v, d in final.decisions.items()} == {v: {"decision": "rejected", "reviewer": None, "at": deadline.isoformat(),
                                   "note": "no decision within 1h: reject (on_timeout)", "published": None}
                               for v in (V0, V1, V2)}
    summary = run.summary()
    assert (summary.status, summary.approved, summary.rejected, summary.undecided) == ("completed", 0, 3, 0)


def test_at_the_timeout_on_timeout_approve_publishes_what_nobody_decided():
    job = {**JOB, "review": {"timeout": "1h", "on_timeout": "approve"}}
    run = play(request_of(job), scripted.activities(), passes(decision(reject=[V0])))

    [publish] = run.requests("publish_images", PublishImagesRequest)
    assert publish.images == outputs(V1, V2)
    assert run.calls("publish_images")[0].at >= deadline_of(run)
    decisions = manifests(run)[-1].decisions
    assert {v: (d.decision, d.reviewer, d.published) for v, d in decisions.items()} == {
        V0: ("rejected", "ana", None), V1: ("approved", None, published(V1)), V2: ("approved", None, published(V2))}
    assert (run.summary().approved, run.summary().rejected) == (2, 1)


def test_the_deployments_review_setting_gives_a_job_without_its_own_the_defaults():
    job = {key: value for key, value in JOB.items() if key != "review"}
    run = play(request_of(job, review=True), scripted.activities(), passes(decision(approve=[V0, V1, V2])))
    waiting = manifests(run)[0].review
    assert (waiting.timeout, waiting.on_timeout) == ("72h", "reject")
    assert waiting.deadline == run.calls("write_manifest")[0].at + timedelta(hours=72)
    assert run.summary().approved == 3


def test_cancel_while_awaiting_review_ends_the_job_cancelled_and_keeps_what_was_published():
    run = play(request_of(JOB), scripted.activities(),
               [Raise(REVIEW_PASS, decision(approve=[V0]), AWAITING), Raise("cancel", {"by": "user"}, AWAITING)])

    final = manifests(run)[-1]
    assert (final.review.state, final.review.ended_by) == ("cancelled", "cancel")
    assert final.decisions[V0].published == published(V0)
    assert final.reasons == ["cancelled by user while awaiting review"]
    summary = run.summary()
    assert (summary.status, summary.approved, summary.undecided) == ("cancelled", 1, 2)
    assert summary.reasons == ["cancelled by user while awaiting review"]


def test_a_publish_that_fails_every_try_is_reported_and_the_decision_stands():
    run = play(request_of(JOB), scripted.activities(publish_images=scripted.publish_images(failing="copy refused")),
               passes(decision(approve=[V0, V1, V2])))

    assert len(run.calls("publish_images")) == 3  # retried
    final = manifests(run)[-1]
    assert {d.decision for d in final.decisions.values()} == {"approved"}
    assert {d.published for d in final.decisions.values()} == {None}
    assert final.reasons == [f"publishing {V0}, {V1}, {V2} failed: copy refused"]
    summary = run.summary()
    assert (summary.status, summary.approved, summary.reasons) == ("completed", 3, final.reasons)


def test_only_images_made_and_checked_safe_are_reviewed():
    run = play(request_of(JOB), scripted.activities(generate_images=scripted.generate_images(blocked=[V1])),
               passes(decision(approve=[V0, V2])))

    assert run.progress()[[p.phase for p in run.progress()].index("awaiting review")].review.model_dump() == {
        "approved": 0, "rejected": 0, "undecided": 2}
    assert list(run.requests("publish_images", PublishImagesRequest)[0].images) == [V0, V2]
    assert manifests(run)[-1].review.ended_by == "all decided"  # V1 was never reviewable
    summary = run.summary()
    assert (summary.status, summary.blocked, summary.approved, summary.undecided) == ("partial", 1, 2, 0)


def test_a_job_with_no_image_to_review_does_not_wait():
    run = play(request_of(JOB), scripted.activities(generate_images=scripted.generate_images(failing=["b000"])))

    assert run.names() == ["moderate_text", "render_batch", "write_manifest"]
    assert manifests(run)[0].review is None
    assert "awaiting review" not in [p.phase for p in run.progress()]
    summary = run.summary()
    assert (summary.status, summary.failed, summary.approved) == ("partial", 3, None)


HOOKED = {**JOB, "notify": {"url": "https://hooks.example.com/shoes/secret"}}


def test_the_webhook_is_told_when_the_review_starts_and_when_the_job_ends():
    run = play(request_of(HOOKED), scripted.activities(), passes(decision(approve=[V0], reject=[V1, V2])))

    assert run.requests("notify_job", NotifyJobRequest) == [
        NotifyJobRequest(job_id=JOB_ID, name="shoes", event="awaiting_review", status="awaiting_review",
                         counts={"total": 3, "ok": 3, "blocked": 0, "failed": 0, "unchecked": 0, "cancelled": 0,
                                 "approved": 0, "rejected": 0, "undecided": 3}, url=HOOKED["notify"]["url"]),
        NotifyJobRequest(job_id=JOB_ID, name="shoes", event="ended", status="completed",
                         counts={"total": 3, "ok": 3, "blocked": 0, "failed": 0, "unchecked": 0, "cancelled": 0,
                                 "approved": 1, "rejected": 2, "undecided": 0}, url=HOOKED["notify"]["url"]),
    ]
    assert run.names().index("notify_job") == run.names().index("write_manifest") + 1  # told once the manifest says so


def _fails(payload: dict):
    raise ActivityFailed("worker process exited")


@pytest.mark.parametrize("webhook", [
    pytest.param(scripted.notify_job(status="failed", error="HTTP 500 after 3 tries"), id="webhook-fails"),
    pytest.param(_fails, id="activity-fails"),
    pytest.param(lambda payload: NO_ANSWER, id="never-answers"),
])
def test_a_webhook_that_fails_or_hangs_does_not_hold_the_review(webhook):
    def notify(payload: dict):
        return webhook(payload) if payload["event"] == "awaiting_review" else scripted.notify_job()(payload)

    run = play(request_of(HOOKED), scripted.activities(notify_job=notify), passes(decision(approve=[V0, V1, V2])))

    assert run.runtime_status == "Completed"
    assert [r.event for r in run.requests("notify_job", NotifyJobRequest)] == ["awaiting_review", "ended"]
    assert (run.summary().status, run.summary().approved) == ("completed", 3)
    assert run.calls("write_manifest")[-1].at < deadline_of(run)


def test_the_custom_status_shows_the_final_decisions_once_the_job_is_done():
    run = play(request_of(JOB), scripted.activities(), passes(decision(approve=[V0]), decision(reject=[V1, V2])))
    summary = run.summary()
    assert run.progress()[-1].review.model_dump() == {"approved": summary.approved, "rejected": summary.rejected,
                                                      "undecided": summary.undecided}


def test_passes_that_come_while_the_job_is_busy_each_land_once_and_the_first_decision_wins():
    # The second and third passes are recorded while the job reads and publishes the first:
    # each wakes it under a name it has not waited for yet (the SDK keeps such an event for
    # its name, which is never waited for again once it has woken the job).
    run = play(request_of(JOB), scripted.activities(), [
        Raise(REVIEW_PASS, decision(approve=[V0], reviewer="ana"), AWAITING),
        Raise(REVIEW_PASS, decision(reject=[V0], approve=[V1], reviewer="bo"), lambda episode: True),
        Raise(REVIEW_PASS, decision(reject=[V2], reviewer="cleo"), lambda episode: True)])

    final = manifests(run)[-1]
    assert {v: (d.decision, d.reviewer) for v, d in final.decisions.items()} == {
        V0: ("approved", "ana"), V1: ("approved", "bo"), V2: ("rejected", "cleo")}
    assert [list(r.images) for r in run.requests("publish_images", PublishImagesRequest)] == [[V0], [V1]]
    assert (final.review.state, final.review.ended_by) == ("done", "all decided")
    assert run.summary().status == "completed"


def test_many_passes_keep_the_history_bounded():
    job = {**JOB, "variants": {**JOB["variants"], "seeds": 12}}
    ids = [variant.id for variant in expand(parse_job(job))]
    run = play(request_of(job), scripted.activities(), passes(*(decision(approve=[v]) for v in ids)))

    assert run.summary().approved == 12
    # Per pass: at most two wake-ups (the route raises this name and the next) and a read each,
    # a publish and a manifest; no wait that returns at once forever.
    assert len(run.calls("read_review_passes")) <= 2 * 12
    assert len(run.episodes()) <= 8 * 12 + 10
