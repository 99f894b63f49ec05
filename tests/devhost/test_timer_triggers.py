"""TimerScheduler in process, with a recording `invoke` and real sleeps kept to a few seconds."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from devhost.ncrontab import TimerScheduleError, parse_timer_schedule
from devhost.timer_triggers import (
    NEVER,
    ScheduleStatus,
    TimerScheduler,
    read_status,
    status_after_run,
    status_on_start,
    write_status,
)
from tests.waiting import wait_until_async

HOURLY = "0 0 * * * *"


class Recorder:
    """An `invoke` that records each call and lets a test wait for the n-th."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[str, object]] = []
        self.fail = fail

    async def __call__(self, function: str, inputs: dict) -> None:
        self.calls.append((function, inputs["timer"]))
        if self.fail:
            raise RuntimeError("the timer function broke")

    async def wait_for(self, count: int, timeout: float) -> list[tuple[str, object]]:
        return await wait_until_async(lambda: list(self.calls), lambda calls: len(calls) >= count, timeout=timeout,
                                      interval=0.01, what=f"{count} timer calls")


async def run_for(scheduler: TimerScheduler, until):
    """Run the scheduler until `until()` is done; returns what it gave."""
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        return await until()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def saved_after_a_run(path, timeout: float = 3) -> ScheduleStatus:
    """The status the scheduler saves once a run has ended: from then on it waits for the next
    slot, so a run it should not make would have been made already."""
    return await wait_until_async(lambda: read_status(path), lambda saved: saved is not None and saved.last > NEVER
                                  and saved.next > datetime.now(timezone.utc), timeout=timeout, interval=0.01,
                                  what=f"{path.name} to record a run and a next slot to come")


def binding(schedule: str, **extra) -> dict:
    return {"type": "timerTrigger", "name": "timer", "schedule": schedule, **extra}


def test_every_two_seconds_fires_repeatedly_and_survives_failures(tmp_path):
    async def scenario():
        calls = Recorder(fail=True)
        scheduler = TimerScheduler([("tick", binding("*/2 * * * * *"))], tmp_path, calls)
        await run_for(scheduler, lambda: calls.wait_for(2, timeout=6))
        return calls.calls

    calls = asyncio.run(scenario())
    assert [name for name, _ in calls[:2]] == ["tick", "tick"]
    assert not any(request.past_due for _, request in calls)
    first, second = (datetime.fromisoformat(request.schedule_status["Next"]) for _, request in calls[:2])
    assert second - first == timedelta(seconds=2)
    assert first.second % 2 == 0
    # More often than once a minute: not monitored, as in Azure, so nothing is persisted.
    assert list(tmp_path.iterdir()) == []


def test_run_on_startup_fires_once_at_start(tmp_path):
    async def scenario():
        calls = Recorder()
        scheduler = TimerScheduler([("nightly", binding(HOURLY, runOnStartup=True))], tmp_path, calls)
        saved = await run_for(scheduler, lambda: saved_after_a_run(tmp_path / "nightly.json"))
        return calls.calls, saved

    calls, saved = asyncio.run(scenario())
    assert len(calls) == 1
    assert calls[0][1].past_due is False
    assert saved.next.minute == 0 and saved.next.second == 0
    assert saved.last > datetime.now(timezone.utc) - timedelta(minutes=1)


def test_missed_window_fires_once_past_due(tmp_path):
    long_ago = datetime(2026, 1, 1, 0, 0, tzinfo=timezone.utc)
    write_status(tmp_path / "report.json",
                 ScheduleStatus(last=long_ago, next=long_ago + timedelta(hours=1), last_updated=long_ago))

    async def scenario():
        calls = Recorder()
        scheduler = TimerScheduler([("report", binding(HOURLY, runOnStartup=True))], tmp_path, calls)
        await run_for(scheduler, lambda: saved_after_a_run(tmp_path / "report.json"))
        return calls.calls

    calls = asyncio.run(scenario())
    # Thousands of hourly slots were missed; the function runs once, and only once.
    assert len(calls) == 1
    request = calls[0][1]
    assert request.past_due is True
    assert request.schedule_status["Last"] == long_ago.isoformat()
    assert request.schedule_status["Next"] == (long_ago + timedelta(hours=1)).isoformat()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved) == {"Last", "Next", "LastUpdated"}
    assert datetime.fromisoformat(saved["Next"]) > datetime.now(timezone.utc)


def test_frequent_monitored_timer_catches_up_once_then_keeps_time(tmp_path):
    long_ago = datetime(2026, 1, 1, tzinfo=timezone.utc)
    write_status(tmp_path / "tick.json", ScheduleStatus(long_ago, long_ago + timedelta(seconds=2), long_ago))

    async def scenario():
        calls = Recorder()
        scheduler = TimerScheduler([("tick", binding("*/2 * * * * *", useMonitor=True))], tmp_path, calls)
        await run_for(scheduler, lambda: calls.wait_for(2, timeout=5))
        return calls.calls

    calls = asyncio.run(scenario())
    assert [request.past_due for _, request in calls[:2]] == [True, False]


def test_invalid_schedule_names_the_function(tmp_path):
    with pytest.raises(TimerScheduleError, match=r"timer function `cleanup`: schedule `0 0 25 \* \* \*` is invalid: not a valid NCRONTAB expression .*out of range"):
        TimerScheduler([("ok", binding(HOURLY)), ("cleanup", binding("0 0 25 * * *"))], tmp_path, Recorder())


def test_app_setting_schedule(tmp_path):
    scheduler = TimerScheduler([("nightly", binding("%NIGHTLY_SCHEDULE%"))], tmp_path, Recorder(),
                               settings={"NIGHTLY_SCHEDULE": "0 0 3 * * *"})
    assert scheduler.timers[0].schedule.text == "0 0 3 * * *"
    assert scheduler.timers[0].use_monitor is True


# Pure start/stop decisions, with an injected clock.

def test_first_start_is_never_past_due():
    now = datetime(2026, 11, 21, 13, 0, 30, tzinfo=timezone.utc)
    status, past_due = status_on_start(parse_timer_schedule(HOURLY), None, now)
    assert (status.last, status.next, past_due) == (NEVER, datetime(2026, 11, 21, 14, tzinfo=timezone.utc), False)


def test_changed_schedule_is_recounted_from_last_run():
    schedule = parse_timer_schedule("0 */5 * * * *")   # was hourly, now every five minutes
    last = datetime(2026, 11, 21, 13, 0, tzinfo=timezone.utc)
    stored = ScheduleStatus(last=last, next=last + timedelta(hours=1), last_updated=last)
    status, past_due = status_on_start(schedule, stored, last + timedelta(minutes=2))
    assert (status.next, past_due) == (last + timedelta(minutes=5), False)
    _, past_due = status_on_start(schedule, stored, last + timedelta(minutes=7))
    assert past_due is True


def test_long_run_skips_slots_it_overlapped():
    schedule = parse_timer_schedule("*/10 * * * * *")
    fired = datetime(2026, 11, 21, 13, 0, 0, tzinfo=timezone.utc)
    status = status_after_run(schedule, fired, fired + timedelta(seconds=25))
    assert (status.last, status.next) == (fired, fired + timedelta(seconds=30))
    # A wake-up a few ms early must not fire the same slot twice.
    early = status_after_run(schedule, fired, fired - timedelta(milliseconds=3))
    assert early.next == fired + timedelta(seconds=10)


def test_unreadable_status_file_starts_afresh(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    assert read_status(tmp_path / "t.json") is None
