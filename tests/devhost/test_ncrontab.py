"""Timer schedules: NCRONTAB fields, next-occurrence maths, TimeSpans, and the errors users see."""

from datetime import datetime, timedelta, timezone

import pytest

from devhost.ncrontab import TimerScheduleError, parse_timer_schedule

START = datetime(2026, 11, 21, 13, 0, 0, tzinfo=timezone.utc)   # a Saturday


def occurrences(text: str, count: int = 3, start: datetime = START, settings=None) -> list[str]:
    schedule = parse_timer_schedule(text, settings)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(moment.strftime("%Y-%m-%d %a %H:%M:%S"))
    return found


def test_first_field_is_seconds():
    assert occurrences("*/2 * * * * *") == [
        "2026-11-21 Sat 13:00:02", "2026-11-21 Sat 13:00:04", "2026-11-21 Sat 13:00:06"]
    assert occurrences("30 * * * * *", 2) == ["2026-11-21 Sat 13:00:30", "2026-11-21 Sat 13:01:30"]


def test_next_is_strictly_after_even_mid_second():
    schedule = parse_timer_schedule("*/2 * * * * *")
    assert schedule.next_after(START.replace(microsecond=999_000)) == START + timedelta(seconds=2)
    assert schedule.next_after(START.replace(second=1)) == START + timedelta(seconds=2)


def test_ranges_steps_and_lists():
    assert occurrences("0 0,30 9-10 * * *", 5) == [
        "2026-11-22 Sun 09:00:00", "2026-11-22 Sun 09:30:00", "2026-11-22 Sun 10:00:00",
        "2026-11-22 Sun 10:30:00", "2026-11-23 Mon 09:00:00"]
    assert occurrences("0 10-50/20 13 * * *") == [
        "2026-11-21 Sat 13:10:00", "2026-11-21 Sat 13:30:00", "2026-11-21 Sat 13:50:00"]
    # NCrontab: a single value with a step runs from that value to the field's maximum.
    assert occurrences("5/20 * * * * *") == [
        "2026-11-21 Sat 13:00:05", "2026-11-21 Sat 13:00:25", "2026-11-21 Sat 13:00:45"]


def test_day_of_week_numbers_and_names():
    weekdays = ["2026-11-23 Mon 09:30:00", "2026-11-24 Tue 09:30:00", "2026-11-25 Wed 09:30:00"]
    assert occurrences("0 30 9 * * MON-FRI") == weekdays
    assert occurrences("0 30 9 * * 1-5") == weekdays
    assert occurrences("0 30 9 * * monday-Friday") == weekdays
    assert occurrences("0 0 0 * * 0", 2) == ["2026-11-22 Sun 00:00:00", "2026-11-29 Sun 00:00:00"]
    assert occurrences("0 0 0 * * SAT,SUN", 2) == ["2026-11-22 Sun 00:00:00", "2026-11-28 Sat 00:00:00"]


def test_month_names_and_month_rollover():
    assert occurrences("0 0 12 1 JAN,jul *", 3) == [
        "2027-01-01 Fri 12:00:00", "2027-07-01 Thu 12:00:00", "2028-01-01 Sat 12:00:00"]
    # Day 31 only exists in some months: skipped where it does not.
    assert occurrences("0 0 0 31 * *", 3) == [
        "2026-12-31 Thu 00:00:00", "2027-01-31 Sun 00:00:00", "2027-03-31 Wed 00:00:00"]
    assert occurrences("0 0 0 29 FEB *", 2) == ["2028-02-29 Tue 00:00:00", "2032-02-29 Sun 00:00:00"]


def test_day_and_weekday_must_both_match_as_in_ncrontab():
    # Unix cron would fire every 13th AND every Friday; NCrontab (Azure) only on Friday the 13th.
    assert occurrences("0 0 0 13 * FRI", 2) == ["2027-08-13 Fri 00:00:00", "2028-10-13 Fri 00:00:00"]


def test_five_fields_mean_second_zero():
    assert occurrences("*/15 * * * *", 2) == ["2026-11-21 Sat 13:15:00", "2026-11-21 Sat 13:30:00"]


def test_timespan_schedules():
    assert occurrences("00:05:00", 2) == ["2026-11-21 Sat 13:05:00", "2026-11-21 Sat 13:10:00"]
    assert occurrences("01:00:30", 1) == ["2026-11-21 Sat 14:00:30"]
    # Azure: from 24 on the first number counts days, so 24:00:00 is 24 days.
    assert parse_timer_schedule("24:00:00").interval == timedelta(days=24)
    assert parse_timer_schedule("1.02:00:00").interval == timedelta(days=1, hours=2)


def test_app_setting_expansion():
    settings = {"NIGHTLY": "0 0 3 * * *"}
    assert occurrences("%NIGHTLY%", 1, settings=settings) == ["2026-11-22 Sun 03:00:00"]


@pytest.mark.parametrize("schedule, message", [
    ("0 61 * * * *", "schedule `0 61 * * * *` is invalid: minute value 61 is out of range 0-59"),
    ("* * * *", "expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 without seconds, got 4"),
    ("0 0 0 * * 7", "day-of-week value 7 is out of range 0-6"),
    ("0 0 0 * * FOO", "day-of-week value `FOO` is not a number 0-6 or a name like SUN, MON, TUE"),
    ("*/0 * * * * *", "second step `/0` must be a whole number of at least 1"),
    ("0 0 5-1 * * *", "hour range `5-1` runs backwards (5 > 1)"),
    ("0 0 0 30 FEB *", "it never fires: no chosen month has any of the chosen days"),
    ("25:61:00", "TimeSpan hours must be between 0 and 23, got 61"),
    ("00:00:00", "a TimeSpan schedule must be longer than zero"),
    ("%MISSING_SCHEDULE%", "schedule `%MISSING_SCHEDULE%` is invalid: app setting `MISSING_SCHEDULE` is not set"),
    ("", "a schedule must be a non-empty string"),
])
def test_invalid_schedules_say_what_and_why(schedule, message):
    with pytest.raises(TimerScheduleError) as caught:
        parse_timer_schedule(schedule, settings={})
    assert message in str(caught.value)


def test_error_from_an_app_setting_shows_both_names():
    with pytest.raises(TimerScheduleError, match=r"`%BAD%` \(= `0 99 \* \* \* \*`\) is invalid: minute value 99"):
        parse_timer_schedule("%BAD%", settings={"BAD": "0 99 * * * *"})


# Cross-check against croniter (a different implementation of the same maths), told to read
# seconds first and to AND the day fields as NCrontab does.

from croniter import croniter  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402


def field_text(low: int, high: int):
    number = st.integers(low, high)
    single = number.map(str)
    # croniter mishandles one-value ranges (`3-3`) in day-of-week: write those as the value.
    span = st.tuples(number, number).map(
        lambda pair: f"{min(pair)}-{max(pair)}" if pair[0] != pair[1] else str(pair[0]))
    # `v/1` is just v in NCrontab but v-max in croniter: steps go on `*` or a real range only.
    proper_span = span.filter(lambda text: "-" in text)
    stepped = st.tuples(st.sampled_from(["*"]) | proper_span, st.integers(1, high - low + 1)).map(
        lambda pair: f"{pair[0]}/{pair[1]}")
    element = st.sampled_from(["*"]) | single | span | stepped
    return st.lists(element, min_size=1, max_size=3).map(",".join)


expressions = st.tuples(field_text(0, 59), field_text(0, 59), field_text(0, 23), field_text(1, 28),
                        field_text(1, 12), field_text(0, 6)).map(" ".join)
moments = st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1)).map(
    lambda moment: moment.replace(tzinfo=timezone.utc))


@settings(max_examples=150, deadline=None)
@given(expression=expressions, start=moments)
def test_next_occurrences_agree_with_croniter(expression, start):
    ours = parse_timer_schedule(expression)
    theirs = croniter(expression, start.replace(microsecond=0), day_or=False, second_at_beginning=True)
    moment = start
    for _ in range(3):
        moment = ours.next_after(moment)
        assert moment == theirs.get_next(datetime), expression
