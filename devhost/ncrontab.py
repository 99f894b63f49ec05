"""Timer-trigger schedules as Azure Functions reads them: NCRONTAB expressions and TimeSpans.

Azure's timer extension accepts:

- six-field NCRONTAB, `{second} {minute} {hour} {day} {month} {day-of-week}`, and the
  classic five fields (no seconds, which means second 0);
- a TimeSpan: `hh:mm:ss` while `hh` is below 24, `dd:hh:mm` from 24 on (Azure's own rule),
  or `d.hh:mm:ss`; the timer then fires every that long;
- `%NAME%`: the whole schedule taken from the app setting NAME.

Six-field NCRONTAB is evaluated by croniter, told to read seconds first and to AND a restricted
day-of-month with a restricted day-of-week as NCrontab does (`0 0 9 13 * FRI` is Friday the
13th only; Vixie cron would fire every 13th and every Friday). Names are croniter's three-letter
ones (`MON`, `jan`). Of our own, only TimeSpans, `%SETTING%` and two range checks where croniter
reads differently from NCrontab (see `_check_ranges`).

Times are UTC (Azure's default without WEBSITE_TIME_ZONE); `next_after` is strictly after.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from croniter import CroniterBadDateError, CroniterError, croniter

__all__ = [
    "TimerScheduleError", "TimerSchedule", "CronSchedule", "IntervalSchedule",
    "parse_timer_schedule", "expand_app_setting",
]


class TimerScheduleError(ValueError):
    """A timer schedule that cannot be used; names the function (when known), the schedule and why."""

    def __init__(self, schedule: str, reason: str, function: str | None = None,
                 resolved: str | None = None):
        self.schedule = schedule
        self.reason = reason
        self.function = function
        self.resolved = resolved   # what a `%SETTING%` schedule expanded to
        where = f"timer function `{function}`: " if function else ""
        shown = f"`{schedule}`" + (f" (= `{resolved}`)" if resolved is not None else "")
        super().__init__(f"{where}schedule {shown} is invalid: {reason}")

    def for_function(self, function: str) -> "TimerScheduleError":
        return TimerScheduleError(self.schedule, self.reason, function, self.resolved)


class TimerSchedule(Protocol):
    text: str

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (aware, UTC)."""


@dataclass(frozen=True)
class CronSchedule:
    """A checked NCRONTAB expression, evaluated by croniter (seconds first, day fields ANDed)."""

    text: str         # as written
    expression: str   # six fields, as handed to croniter

    def next_after(self, moment: datetime) -> datetime:
        # A fresh iterator per call: croniter's is stateful and timers run on several threads.
        return _iterator(self.expression, _as_utc(moment)).get_next(datetime)


def _iterator(expression: str, start: datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=True, day_or=False)


# croniter reads `3-3` as `*` and `5-1` as wrapping round (5..max, then 0..1); NCrontab reads the
# first as 3 and refuses the second. Caught here so devhost never fires where Azure would not.
_RANGE = re.compile(r"(?<![\w/])(\d+)-(\d+)")


def _check_ranges(text: str) -> str:
    for first, last in _RANGE.findall(text):
        if int(first) > int(last):
            raise ValueError(f"range `{first}-{last}` runs backwards ({first} > {last})")
    return _RANGE.sub(lambda m: m[1] if int(m[1]) == int(m[2]) else m[0], text)


def _parse_cron(text: str) -> CronSchedule:
    fields = text.split()
    if len(fields) not in (5, 6):   # croniter would also take a seventh (year) field and `@daily`
        raise ValueError(
            f"expected 6 fields ({{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}) "
            f"or 5 without seconds, got {len(fields)}")
    if len(fields) == 5:
        fields = ["0", *fields]   # Azure reads five fields as NCRONTAB without seconds
    expression = _check_ranges(" ".join(fields))
    try:
        # Evaluating once also catches expressions that never fire, like 30 February.
        _iterator(expression, datetime(2000, 1, 1, tzinfo=timezone.utc)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError("it never fires: no chosen month has any of the chosen days") from None
    except CroniterError as error:
        raise ValueError(f"not a valid NCRONTAB expression ({error})") from None
    return CronSchedule(text=text, expression=expression)


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every `interval`, counted from the previous occurrence."""

    text: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return _as_utc(moment) + self.interval


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+)(?::(\d+))?$")


def _parse_timespan(text: str) -> IntervalSchedule:
    match = _TIMESPAN.match(text)
    if not match:
        raise ValueError("a TimeSpan must look like hh:mm:ss, dd:hh:mm or d.hh:mm:ss")
    days_text, first, second, third = match.groups()
    first_value, second_value = int(first), int(second)
    third_value = int(third) if third is not None else 0
    if days_text is None and third is not None and first_value >= 24:
        # Azure's documented rule: from 24 on, the first number counts days (`24:00:00` = 24 days).
        interval = timedelta(days=first_value, hours=second_value, minutes=third_value)
        limits: tuple[tuple[str, int, int], ...] = (("hours", second_value, 23), ("minutes", third_value, 59))
    else:
        interval = timedelta(days=int(days_text or 0), hours=first_value, minutes=second_value,
                             seconds=third_value)
        limits = (("hours", first_value, 23), ("minutes", second_value, 59), ("seconds", third_value, 59))
    for unit, value, most in limits:
        if value > most:
            raise ValueError(f"TimeSpan {unit} must be between 0 and {most}, got {value}")
    if interval <= timedelta(0):
        raise ValueError("a TimeSpan schedule must be longer than zero")
    return IntervalSchedule(text=text, interval=interval)


def expand_app_setting(text: str, settings: Mapping[str, str] | None = None) -> str:
    """`%NAME%` → the app setting NAME (Azure resolves the whole schedule this way)."""
    stripped = text.strip()
    if len(stripped) > 2 and stripped.startswith("%") and stripped.endswith("%"):
        name = stripped[1:-1]
        source = os.environ if settings is None else settings
        if name not in source:
            raise TimerScheduleError(text, f"app setting `{name}` is not set")
        return source[name].strip()
    return stripped


def parse_timer_schedule(text: str, settings: Mapping[str, str] | None = None) -> CronSchedule | IntervalSchedule:
    """Parse a timerTrigger `schedule`; raises TimerScheduleError naming the schedule and the rule."""
    if not isinstance(text, str) or not text.strip():
        raise TimerScheduleError(str(text), "a schedule must be a non-empty string")
    expanded = expand_app_setting(text, settings)
    resolved = None if expanded == text.strip() else expanded
    try:
        if " " not in expanded and ":" in expanded:
            return _parse_timespan(expanded)
        return _parse_cron(expanded)
    except ValueError as error:
        raise TimerScheduleError(text, str(error), resolved=resolved) from None
