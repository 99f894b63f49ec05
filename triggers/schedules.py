"""Schedules: YAML files in the `schedules` container start jobs when they come due.

One timer (every minute; `IMAGEGEN_SCHEDULE_TICK`) reads every schedule and starts each
that came due since the timer's last run, as instance `schedule-{name}-{UTC slot}`. The
instance id makes each slot run once; only the latest due slot runs, so a host that was
down for an hour runs a missed slot once, not once per missed minute. A schedule file
that is not valid gets `NAME.error.json` beside it, and the others still run.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import azure.functions as func

from imagegen.core import blob_names
from imagegen.core.types import JobValidationError
from imagegen.jobs import intake
from imagegen.jobs.schedule_files import due_slot, parse_schedule
from imagegen.jobs.spec import JobSpec, Limits
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from triggers.jobs import JobReader, start_job

bp = df.Blueprint()
log = logging.getLogger(__name__)

# Without a recorded last run (the very first tick), look back one minute.
FIRST_LOOK_BACK = timedelta(minutes=1)


@bp.timer_trigger(arg_name="timer", schedule="%IMAGEGEN_SCHEDULE_TICK%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def run_schedules(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    now = datetime.now(timezone.utc)
    since = last_run(timer) or now - FIRST_LOOK_BACK
    settings = current().settings
    limits = Limits.from_settings(settings)
    store = current().store
    for ref in store.list("schedules"):
        if not ref.lower().endswith((".yaml", ".yml")):
            continue
        name = blob_names.split_ref(ref)[1]
        error_ref = blob_names.schedule_error_ref(name)
        try:
            schedule, job = parse_schedule(store.get(ref), name, limits, settings)
        except JobValidationError as error:
            report = {"file": ref, "errors": [e.model_dump() for e in error.errors]}
            store.put(error_ref, json.dumps(report, indent=2).encode(), "application/json")
            log.warning("schedule %s is invalid: %s", ref, error)
            continue
        except storage.BlobNotFound:
            continue
        if store.exists(error_ref):
            store.delete(error_ref)  # fixed since the last report
        slot = due_slot(schedule.cron, now, since) if schedule.enabled else None
        if slot is None:
            continue
        job_id = intake.schedule_job_id(schedule.name, slot)
        if await client.get_status(job_id):
            continue  # this slot already ran
        try:
            await start_job(client, _already_read(job), source="schedule", job_id=job_id,
                            origin=schedule.name)
            log.info("schedule %s: started %s for slot %s", schedule.name, job_id, slot.isoformat())
        except JobValidationError as error:  # a source image that is missing or bad
            errors = [e.model_copy(update={"path": f"job.{e.path}"}) for e in error.errors]
            report = {"file": ref, "errors": [e.model_dump() for e in errors]}
            store.put(error_ref, json.dumps(report, indent=2).encode(), "application/json")
            log.warning("schedule %s: slot %s not started: %s", schedule.name, slot.isoformat(), error)
        except Exception as error:  # a concurrent tick started the same slot first
            log.info("schedule %s: slot %s not started again (%s)", schedule.name, slot.isoformat(), error)


def _already_read(job: JobSpec) -> JobReader:
    """The reader of a job the schedule file held (parse_schedule has read and checked it)."""
    return lambda store, limits: job


def last_run(timer: func.TimerRequest) -> datetime | None:
    # The abstract func.TimerRequest declares only past_due; the worker's (and devhost's) has schedule_status.
    last = (timer.schedule_status or {}).get("Last")  # type: ignore[attr-defined]
    if not last:
        return None
    when = datetime.fromisoformat(str(last).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
