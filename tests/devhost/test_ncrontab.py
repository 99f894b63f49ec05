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
    assert occurrences("0 0 9 13 * FRI", 3, start=datetime(2026, 1, 1, tzinfo=timezone.utc)) == [
        "2026-02-13 Fri 09:00:00", "2026-03-13 Fri 09:00:00", "2026-11-13 Fri 09:00:00"]
    assert occurrences("0 0 0 13 * 5", 1) == ["2027-08-13 Fri 00:00:00"]


def test_one_value_ranges_mean_that_value():
    # croniter alone reads `a-a` as `*`: every hour, every day.
    assert occurrences("0 0 3-3 * * *", 2) == ["2026-11-22 Sun 03:00:00", "2026-11-23 Mon 03:00:00"]
    assert occurrences("0 0 0 13-13 * 5-5", 1) == ["2027-08-13 Fri 00:00:00"]


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
    ("0 61 * * * *", "schedule `0 61 * * * *` is invalid: not a valid NCRONTAB expression"),
    ("* * * *", "expected 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5 without seconds, got 4"),
    ("0 0 0 * * 8", "not a valid NCRONTAB expression"),
    ("0 0 0 * * FOO", "not a valid NCRONTAB expression"),
    ("*/0 * * * * *", "not a valid NCRONTAB expression"),
    ("0 0 5-1 * * *", "range `5-1` runs backwards (5 > 1)"),
    ("0 0 0 1 1 * 2030", "expected 6 fields"),
    ("@daily", "expected 6 fields"),
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
    with pytest.raises(TimerScheduleError, match=r"`%BAD%` \(= `0 99 \* \* \* \*`\) is invalid: not a valid NCRONTAB"):
        parse_timer_schedule("%BAD%", settings={"BAD": "0 99 * * * *"})
