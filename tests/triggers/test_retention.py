"""Which histories retention purges (triggers/retention.py); tests/app/test_job_listing.py runs
the timer itself through devhost."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from triggers.job_listing import InstanceQuery, InstanceStatus
from triggers.retention import purge_jobs_ended_before

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)
CUTOFF = NOW - timedelta(days=30)


def instance(instance_id: str, days_ago: float, status: str = "Completed", *, ended_days_ago: float | None = None,
             name: str | None = None) -> InstanceStatus:
    return InstanceStatus(name=name or ("render_batch" if ":" in instance_id else "generate_batch"),
                          instanceId=instance_id, runtimeStatus=status,
                          createdTime=NOW - timedelta(days=days_ago),
                          lastUpdatedTime=NOW - timedelta(days=days_ago if ended_days_ago is None else ended_days_ago))


class Hub:
    """A task hub that filters as the management API does and purges only ended instances."""

    def __init__(self, instances: list[InstanceStatus]):
        self.instances = {i.instanceId: i for i in instances}
        self.purged: list[str] = []

    async def pages(self, query: InstanceQuery):
        found = [i for i in self.instances.values()
                 if (query.created_to is None or i.createdTime <= query.created_to)
                 and (not query.runtime_statuses or i.runtimeStatus in query.runtime_statuses)
                 and (not query.id_prefix or i.instanceId.startswith(query.id_prefix))]
        yield found[:2]
        if found[2:]:
            yield found[2:]

    async def purge(self, instance_id: str) -> bool:
        found = self.instances.get(instance_id)
        if found is None or found.runtimeStatus not in ("Completed", "Failed", "Terminated"):
            return False
        del self.instances[instance_id]
        self.purged.append(instance_id)
        return True


def test_jobs_that_ended_before_the_cutoff_go_with_their_batches_first_and_nothing_else():
    hub = Hub([
        instance("old", 40), instance("old:b0", 40), instance("old:b1", 40),
        instance("old-failed", 35, "Failed"), instance("old-cancelled", 31, "Terminated"),
        instance("old-running", 45, "Running"), instance("old-running:b0", 45),
        instance("ended-lately", 40, ended_days_ago=3), instance("ended-lately:b0", 40),
        instance("recent", 2), instance("recent:b0", 2),
        instance("terminated-busy", 50, "Terminated"), instance("terminated-busy:b0", 50, "Running"),
        instance("not-a-job", 60, name="something_else"),
    ])
    report = asyncio.run(purge_jobs_ended_before(hub, CUTOFF))
    assert set(hub.purged) == {"old", "old:b0", "old:b1", "old-failed", "old-cancelled"}
    assert hub.purged.index("old:b0") < hub.purged.index("old") and hub.purged.index("old:b1") < hub.purged.index("old")
    assert (report.jobs, report.batches, report.skipped) == (3, 2, 1)  # terminated-busy waits for its batch
    assert {"old-running", "old-running:b0", "ended-lately", "recent", "terminated-busy:b0", "not-a-job"} <= set(hub.instances)


def test_a_second_run_finds_nothing_more():
    hub = Hub([instance("old", 40), instance("old:b0", 40), instance("recent", 1)])
    asyncio.run(purge_jobs_ended_before(hub, CUTOFF))
    again = asyncio.run(purge_jobs_ended_before(hub, CUTOFF))
    assert (again.jobs, again.batches, again.skipped) == (0, 0, 0) and set(hub.instances) == {"recent"}
