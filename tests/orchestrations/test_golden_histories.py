"""`generate_batch` and `render_batch` replayed against recorded histories (tests/orchestrations/golden/).

Each golden file is one job as devhost's pure core played it: a job that completes, one
whose prompt is blocked, one with a GPU batch that fails on every try, one cancelled, one
reviewed in two passes, one whose review times out (with a webhook), one with a webhook,
one img2img.
Replaying the recorded messages through today's orchestrators must decide the same: a
change that fails here would break instances in flight in Azure (see golden.py).
"""

from __future__ import annotations

import copy
import json

import pytest

from tests.orchestrations.golden import JOB_ID, SCENARIOS, path_of, replay


def golden(name: str) -> dict:
    return json.loads(path_of(name).read_text())


def final(recording: dict, instance_id: str = JOB_ID) -> dict:
    return recording["instances"][instance_id]["episodes"][-1]


def calls(recording: dict, instance_id: str = JOB_ID) -> list[list]:
    """Each call the instance made, without its input: [kind, name(, instance id)]."""
    return [call[:-1] for e in recording["instances"][instance_id]["episodes"] for call in e["calls"]]


@pytest.mark.parametrize("scenario", [s.name for s in SCENARIOS])
def test_todays_orchestrators_replay_the_recorded_history(scenario):
    assert replay(golden(scenario)) == []


def test_a_completed_job_checked_its_inputs_rendered_one_batch_and_wrote_its_manifest():
    recording = golden("ok")
    assert calls(recording) == [["activity", "moderate_text"], ["sub_orchestration", "render_batch", f"{JOB_ID}:b000"],
                     ["activity", "write_manifest"]]
    summary = final(recording)["output"]
    assert (summary["status"], summary["total"], summary["ok"]) == ("completed", 2, 2)


def test_a_blocked_prompt_rejects_the_job_without_rendering():
    recording = golden("blocked_input")
    assert list(recording["instances"]) == [JOB_ID]  # no render_batch ever started
    summary = final(recording)["output"]
    assert (summary["status"], summary["blocked"]) == ("rejected", 2)
    assert summary["reasons"] == ["prompt 'a forbidden thing' is blocked: blocklist: golden"]


def test_a_batch_failing_every_try_is_retried_three_times_and_the_job_ends_partial():
    recording = golden("failed_batch")
    assert calls(recording, f"{JOB_ID}:b001") == [["activity", "order_render"]] * 3  # each answered failed
    summary = final(recording)["output"]
    assert (summary["status"], summary["ok"], summary["failed"]) == ("partial", 1, 1)
    assert summary["reasons"][0].endswith("failed: CUDA out of memory")


def test_a_cancelled_job_records_what_was_made_and_what_was_cancelled():
    summary = final(golden("cancel"))["output"]
    assert (summary["status"], summary["ok"], summary["cancelled"]) == ("cancelled", 2, 2)
    assert summary["reasons"] == ["cancelled by user"]


def test_replay_reports_a_history_the_code_would_not_make_again():
    # The check can fail: a recorded call the code no longer makes, and an output it no longer gives.
    recording = copy.deepcopy(golden("ok"))
    episodes = recording["instances"][JOB_ID]["episodes"]
    episodes[0]["calls"][0][1] = "moderate_texts"
    episodes[-1]["output"]["ok"] = 3
    problems = replay(recording)
    assert f"{JOB_ID} episode 0: call 0 was activity moderate_texts, now activity moderate_text" in problems
    assert any("the output no longer holds ok: 3" in p for p in problems)


def test_replay_reports_a_call_made_with_another_input():
    # The same calls in the same order are not enough: each one's input is compared as recorded.
    recording = copy.deepcopy(golden("ok"))
    [moderate] = recording["instances"][JOB_ID]["episodes"][0]["calls"]
    moderate[-1]["texts"] = ["a blue bicycle"]
    [render] = recording["instances"][JOB_ID]["episodes"][1]["calls"]
    render[-1]["batch"]["variants"][1]["steps"] = 3
    render[-1]["batch"]["extra"] = 1
    problems = replay(recording)
    assert problems == [
        f"{JOB_ID} episode 0: call 0 (activity moderate_text): input differs at "
        "texts[0]: 'a blue bicycle' (now 'a red bicycle')",
        f"{JOB_ID} episode 1: call 0 (sub_orchestration render_batch {JOB_ID}:b000): input differs at "
        "batch.variants[1].steps: 3 (now 2); batch.extra: 1 (now '<absent>')",
    ]


def test_a_reviewed_job_published_what_was_approved_in_two_passes():
    recording = golden("review_approve")
    assert calls(recording) == [["activity", "moderate_text"], ["sub_orchestration", "render_batch", f"{JOB_ID}:b000"],
                                ["activity", "write_manifest"], ["activity", "read_review_passes"],
                                ["activity", "publish_images"], ["activity", "write_manifest"],
                                ["activity", "read_review_passes"], ["activity", "write_manifest"]]
    summary = final(recording)["output"]
    assert (summary["status"], summary["approved"], summary["rejected"], summary["undecided"]) == ("completed", 1, 1, 0)


def test_a_review_nobody_answered_ended_at_its_deadline_and_told_the_webhook_twice():
    recording = golden("review_timeout")
    episodes = recording["instances"][JOB_ID]["episodes"]
    [timer_fired] = [e for e in episodes if any(m["event"] and m["event"]["EventType"] == 11 for m in e["messages"])]
    assert timer_fired["at"] == "2026-01-05T10:00:02.000000Z"  # an hour after the images were made
    assert [call[-1]["event"] for e in episodes for call in e["calls"] if call[1] == "notify_job"] == [
        "awaiting_review", "ended"]
    summary = final(recording)["output"]
    assert (summary["status"], summary["approved"], summary["undecided"]) == ("completed", 2, 0)


def test_a_job_with_a_webhook_told_it_the_job_ended_after_writing_its_manifest():
    assert calls(golden("notify"))[-2:] == [["activity", "write_manifest"], ["activity", "notify_job"]]


def test_an_img2img_job_checked_its_source_image():
    recording = golden("img2img")
    assert calls(recording)[:2] == [["activity", "moderate_text"], ["activity", "moderate_image"]]
    assert recording["instances"][JOB_ID]["episodes"][1]["calls"][0][-1] == {"job_id": JOB_ID, "image": "inputs/bike.png"}
