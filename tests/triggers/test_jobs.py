"""triggers/jobs.py: a job's state in users' words, whatever the runtime says, and the
vocabulary shared by the API, the CLI and the gallery."""

from __future__ import annotations

import pytest

from imagegen.core.types import ENDED_STATES, JOB_STATES
from triggers.jobs import TERMINAL, is_job_id, job_state


@pytest.mark.parametrize(("runtime", "output", "progress", "state"), [
    ("Pending", None, None, "queued"),
    ("Running", None, {"phase": "generating"}, "running"),
    ("Running", None, {"phase": "awaiting review"}, "awaiting_review"),
    ("Running", None, {"phase": "done", "status": "partial"}, "partial"),  # last notification pending
    ("Completed", {"status": "rejected"}, None, "rejected"),
    ("Completed", "not a summary", None, "completed"),
    ("Failed", "boom", None, "failed"),
    ("Terminated", None, None, "cancelled"),
    ("Suspended", None, None, "suspended"),
])
def test_job_state_in_users_words(runtime, output, progress, state):
    assert job_state(runtime, output, progress) == state


def test_every_ended_runtime_status_reads_as_an_ended_job_state():
    outputs = {"Completed": {"status": "completed"}, "Failed": "boom", "Terminated": None}
    assert {job_state(runtime, outputs[runtime]) for runtime in TERMINAL} <= ENDED_STATES
    assert ENDED_STATES <= set(JOB_STATES)


@pytest.mark.parametrize(("job_id", "ok"), [
    ("spring-1a2b", True), ("schedule-x-20260101T000000Z", True), (".", False), ("..", False), ("a/b", False),
])
def test_is_job_id_refuses_what_the_durable_client_would_misread(job_id, ok):
    assert is_job_id(job_id) is ok
