"""Retention: a timer purges the orchestration history of jobs that ended long ago.

Once a day (`IMAGEGEN_RETENTION_TICK`, 03:30 UTC) the history of every job that ended
(Completed, Failed or Terminated) more than `IMAGEGEN_RETENTION_DAYS` days ago (30; 0 keeps
everything) is purged with the Durable purge API, its batches' `render_batch`
sub-orchestrations first. Without it the task hub grows with every job for ever, and every
list of jobs reads more of it (triggers/job_listing.py).

Manifests and images are never touched: they are the record of what a job made, and
`GET /api/jobs/{id}/manifest` and the images keep answering. A purged job is gone from the
task hub, so `GET /api/jobs/{id}`, the jobs list and the gallery's list no longer show it.

Why per job and not one purge by filter (`DELETE instances?createdTimeTo=&runtimeStatus=`):
a filter would also purge an ended batch of a job that is still running (a job awaiting
review for days, say), and could not skip a job whose batches are not all done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

import azure.durable_functions as df
import azure.functions as func

from imagegen.service.process import current
from triggers.job_listing import DurableInstances, InstancePages, InstanceQuery, InstanceStatus
from triggers.jobs import TERMINAL

bp = df.Blueprint()
log = logging.getLogger(__name__)

ENDED = tuple(sorted(TERMINAL))  # Completed, Failed, Terminated
# Jobs purged in one run at most; a backlog (retention just turned on) goes over several days.
MOST_JOBS_A_RUN = 10_000


class Purger(InstancePages, Protocol):
    """What a purge needs of the task hub: list (as the jobs list does) and purge one instance."""

    async def purge(self, instance_id: str) -> bool: ...


@dataclass
class PurgeReport:
    jobs: int = 0  # jobs whose history is gone
    batches: int = 0  # their sub-orchestrations
    skipped: int = 0  # ended jobs left for a later run: a batch still running, or a purge refused


@bp.timer_trigger(arg_name="timer", schedule="%IMAGEGEN_RETENTION_TICK%", run_on_startup=False)
# The binding's JSON text: listing and purging go through the management API (triggers/job_listing.py).
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def purge_old_jobs(timer: func.TimerRequest, client: str) -> None:
    days = current().settings.retention_days
    if days == 0:
        return  # kept forever
    cutoff = datetime.now(timezone.utc) - timedelta(days=days)
    async with DurableInstances.open(client) as hub:
        report = await purge_jobs_ended_before(hub, cutoff)
    level = logging.INFO if report.jobs or report.skipped else logging.DEBUG  # a quiet day says nothing
    log.log(level, "retention: purged the history of %d jobs (and %d batches) that ended before %s; %d left for later",
            report.jobs, report.batches, cutoff.isoformat(timespec="seconds"), report.skipped)


async def purge_jobs_ended_before(hub: Purger, cutoff: datetime) -> PurgeReport:
    """Purge every job that ended before `cutoff`, each job's batches before the job itself
    (so a run stopped half way leaves no batch whose job is gone: the next run finds the job
    and finishes)."""
    report = PurgeReport()
    # Created before the cutoff, filtered by the API; ended before it, checked here.
    old = InstanceQuery(created_to=cutoff, runtime_statuses=ENDED, show_input=False)
    jobs: list[InstanceStatus] = []
    async for page in hub.pages(old):
        jobs += [instance for instance in page if instance.is_job and _ended_before(instance, cutoff)]
    for job in jobs[:MOST_JOBS_A_RUN]:
        batches: list[InstanceStatus] = []
        async for page in hub.pages(InstanceQuery(id_prefix=f"{job.instanceId}:", show_input=False)):
            batches += page
        if any(batch.runtimeStatus not in TERMINAL for batch in batches):
            report.skipped += 1  # a terminated job's batch still runs: purge it once it ends
            continue
        purged = [await hub.purge(batch.instanceId) for batch in batches]
        report.batches += sum(purged)
        if await hub.purge(job.instanceId):
            report.jobs += 1
        else:
            report.skipped += 1
    report.skipped += max(0, len(jobs) - MOST_JOBS_A_RUN)
    return report


def _ended_before(instance: InstanceStatus, cutoff: datetime) -> bool:
    return (instance.lastUpdatedTime or instance.createdTime) < cutoff
