"""triggers/jobs.py: a job's state in users' words, whatever the runtime says, and the
vocabulary shared by the API, the CLI and the gallery."""

from __future__ import annotations

import pytest

from imagegen.core.types import ENDED_STATES, JOB_STATES
from imagegen.records.messages import JobSummary, Progress
from triggers.jobs import TERMINAL, is_job_id, job_state, read_progress


def summary(status: str) -> dict:
    return JobSummary(job_id="j", name="j", status=status, total=1, manifest="manifests/j.json",
                      manifest_url="http://x/j.json").model_dump(mode="json")


@pytest.mark.parametrize(("runtime", "output", "progress", "state"), [
    ("Pending", None, None, "queued"),
    ("Running", None, Progress(phase="generating", total=2), "running"),
    ("Running", None, Progress(phase="awaiting review", total=2), "awaiting_review"),
    ("Running", None, Progress(phase="done", total=2, status="partial"), "partial"),  # last notification pending
    ("Completed", summary("rejected"), None, "rejected"),
    ("Completed", "not a summary", None, "completed"),
    ("Failed", "boom", None, "failed"),
    ("Terminated", None, None, "cancelled"),
    ("Suspended", None, None, "suspended"),
])
def test_job_state_in_users_words(runtime, output, progress, state):
    assert job_state(runtime, output, progress) == state


def test_every_ended_runtime_status_reads_as_an_ended_job_state():
    outputs = {"Completed": summary("completed"), "Failed": "boom", "Terminated": None}
    assert {job_state(runtime, outputs[runtime]) for runtime in TERMINAL} <= ENDED_STATES
    assert ENDED_STATES <= set(JOB_STATES)


@pytest.mark.parametrize(("job_id", "ok"), [
    ("spring-1a2b", True), ("schedule-x-20260101T000000Z", True), ("drop-a.b_c-1f2e", True), (".", False),
    ("..", False), ("a/b", False), ("J#x", False), ("J?x=1", False), ("a b", False), ("-x", False), ("x" * 129, False),
])
def test_is_job_id_refuses_what_the_durable_client_would_misread(job_id, ok):
    assert is_job_id(job_id) is ok


def test_the_custom_status_reads_back_with_the_model_it_was_written_with():
    written = Progress(phase="generating", total=4, done=2, ok=2).model_dump(mode="json")
    assert read_progress(written) == Progress(phase="generating", total=4, done=2, ok=2)
    assert read_progress('{"phase": "generating", "total": 1}').phase == "generating"  # as some hosts return it
    assert read_progress(None) is None and read_progress({"phase": "no such phase"}) is None
