"""Timer-trigger schedules as Azure Functions reads them: NCRONTAB expressions and TimeSpans.

Azure's timer extension accepts:

- six-field NCRONTAB, `{second} {minute} {hour} {day} {month} {day-of-week}`, and the
  classic five fields (no seconds, which means second 0);
- a TimeSpan: `hh:mm:ss` while `hh` is below 24, `dd:hh:mm` from 24 on (Azure's own rule),
  or `d.hh:mm:ss`; the timer then fires every that long;
- `%NAME%`: the whole schedule taken from the app setting NAME.

NCRONTAB differs from Unix cron in two ways we copy on purpose: a restricted day-of-month and
a restricted day-of-week must BOTH match (NCrontab ANDs them; Vixie cron ORs them), and day
of week is 0-6 with Sunday 0 (no 7). Names match by prefix, case-insensitively (`MON`,
`Monday`, `jan`). `a/n` steps from `a` to the field's maximum. croniter is not used because
it puts the seconds field last and ORs the two day fields.

Times are UTC (Azure's default without WEBSITE_TIME_ZONE); `next_after` is strictly after.
"""

from __future__ import annotations

import calendar
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol

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
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


SECOND = _Field("second", 0, 59)
MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23)
DAY = _Field("day", 1, 31)
MONTH = _Field("month", 1, 12, ("january", "february", "march", "april", "may", "june", "july",
                                "august", "september", "october", "november", "december"))
DAY_OF_WEEK = _Field("day-of-week", 0, 6, ("sunday", "monday", "tuesday", "wednesday",
                                           "thursday", "friday", "saturday"))
SIX_FIELDS = (SECOND, MINUTE, HOUR, DAY, MONTH, DAY_OF_WEEK)


def _parse_value(field: _Field, token: str) -> int:
    if not token:
        raise ValueError(f"{field.name} field has an empty value")
    if token.isdigit():
        value = int(token)
    else:
        word = token.lower()
        # NCrontab takes any prefix of a name; we ask for three letters so `M` or `Ju` is not
        # silently March or June.
        matches = [i for i, name in enumerate(field.names) if len(word) >= 3 and name.startswith(word)]
        if not matches:
            allowed = f"a number {field.low}-{field.high}"
            if field.names:
                allowed += " or a name like " + ", ".join(n[:3].upper() for n in field.names[:3])
            raise ValueError(f"{field.name} value `{token}` is not {allowed}")
        value = matches[0] + field.low
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} value {value} is out of range {field.low}-{field.high}")
    return value


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{field.name} step `/{step_text}` must be a whole number of at least 1")
            step = int(step_text)
            if not part:
                raise ValueError(f"{field.name} step `/{step_text}` needs a start, like `*/{step_text}`")
        if part == "*":
            first, last = field.low, field.high
        elif "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = _parse_value(field, first_text), _parse_value(field, last_text)
            if first > last:
                raise ValueError(f"{field.name} range `{part}` runs backwards ({first} > {last})")
        else:
            first = _parse_value(field, part)
            # NCrontab: a single value with a step (`5/15`) runs from that value to the maximum.
            last = field.high if step > 1 else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed NCRONTAB expression."""

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]   # 0 = Sunday

    def _day_matches(self, day: date) -> bool:
        # Python: Monday = 0; NCRONTAB: Sunday = 0.
        return (day.month in self.months and day.day in self.days
                and (day.weekday() + 1) % 7 in self.days_of_week)

    def _first_time_at_or_after(self, start: time) -> time | None:
        for hour in self.hours:
            if hour < start.hour:
                continue
            for minute in self.minutes:
                if hour == start.hour and minute < start.minute:
                    continue
                for second in self.seconds:
                    if (hour, minute) == (start.hour, start.minute) and second < start.second:
                        continue
                    return time(hour, minute, second)
        return None

    def next_after(self, moment: datetime) -> datetime:
        moment = _as_utc(moment).replace(microsecond=0) + timedelta(seconds=1)
        day = moment.date()
        earliest = self._first_time_at_or_after(moment.time())
        if earliest is None or not self._day_matches(day):
            earliest = time(self.hours[0], self.minutes[0], self.seconds[0])
            day = day + timedelta(days=1)
            # The day fields repeat at least every 28 years (the Gregorian weekday/leap cycle);
            # parse_timer_schedule has already refused dates that never exist, like 30 February.
            for _ in range(28 * 366):
                if self._day_matches(day):
                    break
                day += timedelta(days=1)
            else:  # pragma: no cover - excluded by _check_reachable
                raise TimerScheduleError(self.text, "it never fires")
        return datetime.combine(day, earliest, tzinfo=timezone.utc)


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


def _check_reachable(schedule: CronSchedule) -> None:
    longest = {month: calendar.monthrange(2024, month)[1] for month in range(1, 13)}  # 2024: leap
    if not any(day <= longest[month] for month in schedule.months for day in schedule.days):
        raise ValueError("it never fires: no chosen month has any of the chosen days")


def _parse_cron(text: str) -> CronSchedule:
    tokens = text.split()
    if len(tokens) == 5:
        tokens = ["0", *tokens]   # Azure reads five fields as NCRONTAB without seconds
    elif len(tokens) != 6:
        raise ValueError(
            f"expected 6 fields ({{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}) "
            f"or 5 without seconds, got {len(tokens)}")
    sets = [_parse_field(field, token) for field, token in zip(SIX_FIELDS, tokens)]
    schedule = CronSchedule(
        text=text, seconds=tuple(sorted(sets[0])), minutes=tuple(sorted(sets[1])),
        hours=tuple(sorted(sets[2])), days=sets[3], months=sets[4], days_of_week=sets[5])
    _check_reachable(schedule)
    return schedule


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
        limits = (("hours", second_value, 23), ("minutes", third_value, 59))
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
