"""Timer triggers: fire each `timerTrigger` function on its schedule, as the Azure timer extension does.

What we copy from Azure:
- The schedule status (`Last`, `Next`, `LastUpdated`) is persisted per function when the
  schedule is monitored (`useMonitor`; by default only for schedules at most once a minute).
- On start, if the recorded `Next` has passed while the host was down, the function fires
  ONCE with `past_due=True`: missed slots are never replayed one by one.
- `runOnStartup` fires once at start (a past-due run already counts as that run).
- Runs of one function never overlap: the next occurrence is counted after the run ends.
- A function that raises is logged; the schedule carries on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from azure.functions.timer import TimerRequest

from devhost.ncrontab import CronSchedule, IntervalSchedule, TimerScheduleError, parse_timer_schedule

log = logging.getLogger("devhost.timer")

# .NET's DateTime.MinValue, which Azure writes as `Last` before a timer has ever run.
NEVER = datetime(1, 1, 1, tzinfo=timezone.utc)
# Azure: "the default is true for schedules that have a recurrence interval of 1 minute or more".
MONITOR_THRESHOLD = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ScheduleStatus:
    """What azure.functions' `TimerRequest.schedule_status` carries, and what we persist."""

    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> dict:
        return {"Last": self.last.isoformat(), "Next": self.next.isoformat(),
                "LastUpdated": self.last_updated.isoformat()}

    @classmethod
    def from_json(cls, data: dict) -> "ScheduleStatus":
        return cls(last=_parse_time(data["Last"]), next=_parse_time(data["Next"]),
                   last_updated=_parse_time(data["LastUpdated"]))


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class TimerFunction:
    """One timer-triggered function, its binding checked."""

    name: str
    binding_name: str
    schedule: CronSchedule | IntervalSchedule
    run_on_startup: bool
    use_monitor: bool


def timer_function(name: str, binding: dict, settings: Mapping[str, str] | None = None,
                   now: datetime | None = None) -> TimerFunction:
    """Check a timerTrigger binding; TimerScheduleError names the function and the schedule."""
    try:
        schedule = parse_timer_schedule(binding.get("schedule", ""), settings)
    except TimerScheduleError as error:
        raise error.for_function(name) from None
    use_monitor = binding.get("useMonitor")
    if use_monitor is None:
        first = schedule.next_after(now or utc_now())
        use_monitor = schedule.next_after(first) - first >= MONITOR_THRESHOLD
    return TimerFunction(name=name, binding_name=binding.get("name", "timer"), schedule=schedule,
                         run_on_startup=bool(binding.get("runOnStartup", False)),
                         use_monitor=bool(use_monitor))


def status_on_start(schedule: CronSchedule | IntervalSchedule, stored: ScheduleStatus | None,
                    now: datetime) -> tuple[ScheduleStatus, bool]:
    """The status to start from and whether a run was missed while the host was down."""
    if stored is None:
        return ScheduleStatus(last=NEVER, next=schedule.next_after(now), last_updated=now), False
    # If the schedule was edited while the host was down, Azure recounts Next from Last, so a
    # changed schedule neither fires spuriously nor waits for a slot the old one chose.
    since = stored.last if stored.last != NEVER else stored.last_updated
    expected = schedule.next_after(since)
    status = stored if expected == stored.next else ScheduleStatus(stored.last, expected, now)
    return status, now > status.next


def status_after_run(schedule: CronSchedule | IntervalSchedule, fired_at: datetime,
                     finished: datetime) -> ScheduleStatus:
    """The status once a run that fired at `fired_at` has ended at `finished`."""
    if isinstance(schedule, IntervalSchedule):
        following = schedule.next_after(fired_at)   # every N from the previous run, as Azure does
    else:
        # Count from the end of the run (runs never overlap) but never from before the slot
        # we fired for, or an early wake-up would fire the same slot twice.
        following = schedule.next_after(max(fired_at, finished))
    return ScheduleStatus(last=fired_at, next=following, last_updated=finished)


def read_status(path: Path) -> ScheduleStatus | None:
    try:
        return ScheduleStatus.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as error:
        log.warning("Ignoring unreadable timer status %s (%s); starting the schedule afresh", path, error)
        return None


def write_status(path: Path, status: ScheduleStatus) -> None:
    """Write atomically: a host killed mid-write must not leave half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(status.to_json(), handle, indent=2)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class TimerScheduler:
    """Runs every timer function of an app until `stop` is set."""

    def __init__(self, functions: list[tuple[str, dict]], state_dir: Path,
                 invoke: Callable[[str, dict], Awaitable[None]],
                 now: Callable[[], datetime] = utc_now, *,
                 settings: Mapping[str, str] | None = None):
        self.state_dir = Path(state_dir)
        self._invoke = invoke
        self._now = now
        current = now()
        # Parse everything up front so the host can refuse to start with a bad schedule.
        self.timers = [timer_function(name, binding, settings, current) for name, binding in functions]

    def status_path(self, function: str) -> Path:
        return self.state_dir / f"{function}.json"

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._run_timer(timer, stop) for timer in self.timers))

    async def _run_timer(self, timer: TimerFunction, stop: asyncio.Event) -> None:
        stored = None
        if timer.use_monitor:
            stored = await asyncio.to_thread(read_status, self.status_path(timer.name))
        status, past_due = status_on_start(timer.schedule, stored, self._now())
        await self._save(timer, status)
        if past_due:
            log.info("Timer %s missed %s while the host was down: running it once now (past due)",
                     timer.name, status.next.isoformat())
            status = await self._fire(timer, status, self._now(), past_due=True)
        elif timer.run_on_startup:
            status = await self._fire(timer, status, self._now(), past_due=False)
        while not stop.is_set():
            wait = (status.next - self._now()).total_seconds()
            if wait > 0 and await _stopped_within(stop, wait):
                return
            status = await self._fire(timer, status, status.next, past_due=False)

    async def _fire(self, timer: TimerFunction, status: ScheduleStatus, fired_at: datetime,
                    *, past_due: bool) -> ScheduleStatus:
        request = TimerRequest(past_due=past_due, schedule_status=status.to_json(),
                               schedule={"AdjustForDST": True})
        try:
            await self._invoke(timer.name, {timer.binding_name: request})
        except Exception:
            log.exception("Timer function %s failed; its schedule carries on", timer.name)
        status = status_after_run(timer.schedule, fired_at, self._now())
        await self._save(timer, status)
        return status

    async def _save(self, timer: TimerFunction, status: ScheduleStatus) -> None:
        if not timer.use_monitor:
            return
        try:
            await asyncio.to_thread(write_status, self.status_path(timer.name), status)
        except OSError as error:
            log.warning("Could not save timer status of %s: %s", timer.name, error)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except asyncio.TimeoutError:
        return False
