"""The in-process notice that a job's manifest is written."""

from __future__ import annotations

import asyncio
import threading

from imagegen.service import job_events
from imagegen.service.job_events import JobEvents


def test_a_waiter_wakes_when_another_thread_writes_the_manifest():
    events = JobEvents()

    async def scenario() -> tuple[bool, bool]:
        waiting = asyncio.create_task(events.wait_for_manifest("job-woken", timeout=30))
        await asyncio.sleep(0)  # the waiter is registered
        other = asyncio.create_task(events.wait_for_manifest("job-other", timeout=0.05))
        threading.Thread(target=events.manifest_written, args=("job-woken",)).start()
        return await waiting, await other

    assert asyncio.run(scenario()) == (True, False)


def test_a_waiter_that_comes_after_the_manifest_returns_at_once():
    events = JobEvents()
    events.manifest_written("job-early")
    assert asyncio.run(events.wait_for_manifest("job-early", timeout=30)) is True
    assert asyncio.run(events.wait_for_manifest("job-never", timeout=0.01)) is False


def test_only_the_latest_jobs_are_remembered():
    events = JobEvents()
    for index in range(job_events.REMEMBERED + 1):
        events.manifest_written(f"job-{index}")
    latest = f"job-{job_events.REMEMBERED}"
    assert asyncio.run(events.wait_for_manifest(latest, timeout=30)) is True
    assert asyncio.run(events.wait_for_manifest("job-0", timeout=0.01)) is False
