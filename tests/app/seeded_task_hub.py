"""A devhost task hub written before the host starts: hundreds of jobs that ended at chosen
times, in a second, with no GPU work (tests/app/test_job_listing.py).

Written with devhost's own task hub code (`devhost.durable.store`, the one place its SQL
lives), rows as the engine leaves them: a job (`generate_batch`, its input a real
`JobRequest`, its output a real `JobSummary`) and its batches (`render_batch` instances
`{job}:{batch}`, linked to it), each with the history an ended instance has. An unfinished
job is a `Running` row with no pending message: the engine resumes it and it waits for ever.
Only the app's own HTTP API reads them afterwards.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from devhost.durable import history as h
from devhost.durable.core import OrchestrationState
from devhost.durable.store import Store
from imagegen.jobs.spec import parse_job
from imagegen.records.messages import JobRequest, JobSummary
from tests.app.conftest import tiny_job

ENDED = ("Completed", "Failed", "Terminated")


@dataclass
class SeededJob:
    """One job as seeded: its id, when it was created and last updated (epoch seconds)."""

    id: str
    name: str
    source: str
    runtime: str  # Completed, Failed, Terminated or Running
    status: str  # in a user's words, as the API will show it
    created: float
    updated: float
    batches: list[str] = field(default_factory=list)


def summary_status(runtime: str, outcome: str) -> str:
    return {"Failed": "failed", "Terminated": "cancelled", "Running": "running"}.get(runtime, outcome)


def seed_jobs(path: Path, jobs: list[SeededJob]) -> None:
    """Write `jobs` (and their batches) into the task hub at `path`."""
    store = Store(path)
    try:
        with store.transaction() as db:
            for job in jobs:
                _write_job(db, job)
    finally:
        store.close()


def _write_job(db, job: SeededJob) -> None:
    request = JobRequest(job=parse_job(tiny_job(job.name)), source=job.source,
                         origin="" if job.source == "http" else f"{job.source}-origin")
    request_json = request.model_dump_json()
    output_json = None
    if job.runtime == "Completed":
        output_json = JobSummary(job_id=job.id, name=job.name, status=job.status, total=2, ok=2,
                                 manifest=f"manifests/{job.id}.json",
                                 manifest_url=f"/api/jobs/{job.id}/manifest").model_dump_json()
    elif job.runtime == "Failed":
        output_json = json.dumps("a batch failed on every try")
    execution = uuid.uuid4().hex
    _write_instance(db, job.id, "generate_batch", job.runtime, request_json, output_json, job.created, job.updated,
                    None, execution)
    for task_id, batch_id in enumerate(job.batches):
        # A batch is made just after its job and ends before it (an ended job's batches all ended).
        _write_instance(db, batch_id, "render_batch", "Completed", json.dumps({"batch": batch_id}),
                        json.dumps({"records": []}), job.created + 0.001 * (task_id + 1),
                        min(job.updated, job.created + 1), (job.id, task_id, execution), uuid.uuid4().hex)


def _write_instance(db, instance_id: str, name: str, runtime: str, input_json: str, output_json: str | None,
                    created: float, updated: float, parent: tuple[str, int, str] | None, execution: str) -> None:
    state = OrchestrationState(instance_id, name, input_json, parent[0] if parent else None)
    Store.insert_instance(db, instance_id, name, runtime, input_json, created, parent, execution, state.to_json())
    if runtime not in ENDED:
        return  # resumed by the engine, with nothing to do: it waits
    Store.update_instance(db, instance_id, runtime, input_json, output_json, None, True, updated, execution,
                          state.to_json())
    events = [h.orchestrator_started(_at(created)), h.execution_started(name, input_json, _at(created)),
              _ending(runtime, output_json, _at(updated)), h.orchestrator_completed(_at(updated))]
    Store.append_history(db, instance_id, 0, events)


def _ending(runtime: str, output_json: str | None, at: str) -> dict:
    if runtime == "Completed":
        return h.execution_completed(output_json, at)
    if runtime == "Failed":
        return h.execution_failed("a batch failed on every try", at)
    return h.execution_terminated("stopped by an operator", at)


def _at(epoch: float) -> str:
    return h.format_time(datetime.fromtimestamp(epoch, timezone.utc))
