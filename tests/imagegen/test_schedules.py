"""Schedule files and which slot is due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from imagegen.core.types import JobValidationError
from imagegen.jobs.schedule_files import due_slot, parse_schedule

T = datetime(2026, 3, 2, 9, 0, 7, tzinfo=timezone.utc)  # a Monday


def test_the_latest_slot_since_the_last_run_is_due_once():
    assert due_slot("*/5 * * * * *", T, T - timedelta(seconds=3)) == T.replace(second=5)
    assert due_slot("*/5 * * * * *", T, T.replace(second=5)) is None  # already ran


def test_a_long_outage_runs_only_the_latest_missed_slot():
    week_ago = T - timedelta(days=7)
    assert due_slot("0 * * * * *", T, week_ago) == T.replace(second=0)


def test_a_slot_exactly_now_is_due_and_day_of_week_is_honoured():
    assert due_slot("7 0 9 * * MON", T, T - timedelta(minutes=1)) == T
    assert due_slot("0 0 9 * * TUE", T, T - timedelta(hours=1)) is None


def test_a_schedule_file_names_its_job_and_rejects_bad_crons():
    text = yaml.safe_dump({"cron": "0 0 9 * * MON", "job": {"name": "banners", "prompts": [{"text": "a banner"}]}})
    schedule, job = parse_schedule(text.encode(), "weekly.yaml")
    assert schedule.name == "weekly" and job.name == "banners"
    with pytest.raises(JobValidationError) as raised:
        parse_schedule(yaml.safe_dump({"cron": "0 9 * * MON", "job": {"name": "x", "prompts": []}}).encode(), "x.yaml")
    paths = {error.path for error in raised.value.errors}
    assert "cron" in paths
    with pytest.raises(JobValidationError) as raised:
        parse_schedule(yaml.safe_dump({"cron": "0 0 9 * * MON", "job": {"name": "x", "prompts": []}}).encode(), "x.yaml")
    assert raised.value.errors[0].path.startswith("job.prompts")
    with pytest.raises(JobValidationError, match="line"):
        parse_schedule(b"cron: [unclosed", "x.yaml")


def test_day_of_month_and_day_of_week_both_must_match_as_in_ncrontab():
    # NCRONTAB ANDs a restricted day with a restricted weekday: Friday the 13th only.
    friday_13th = datetime(2026, 3, 13, 9, 0, 0, tzinfo=timezone.utc)
    assert due_slot("0 0 9 13 * FRI", friday_13th, friday_13th - timedelta(hours=1)) == friday_13th
    for not_both in (datetime(2026, 3, 6, 9, 0, 0, tzinfo=timezone.utc),    # a Friday, the 6th
                     datetime(2026, 4, 13, 9, 0, 0, tzinfo=timezone.utc)):  # the 13th, a Monday
        assert due_slot("0 0 9 13 * FRI", not_both, not_both - timedelta(days=6)) is None
