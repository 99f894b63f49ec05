"""Scheduled batches: YAML files in the `schedules` container, each a cron and a job.

```yaml
name: weekly-banners          # optional; defaults to the file name
cron: "0 0 9 * * MON"         # six-field NCRONTAB: second minute hour day month day-of-week (UTC)
job:                          # a job spec, as in docs/jobs.md
  name: banners
  prompts: [{text: "a spring sale banner, pastel colours"}]
```

A timer looks every minute for schedules that came due. Only the latest due slot runs:
a slot missed while the host was down runs once when it is back, not once per missed
minute, and a slot before the schedule file was last changed never runs.

Crons read as NCRONTAB does (and as devhost's timer): seconds first, and a restricted
day-of-month ANDed with a restricted day-of-week, so `0 0 9 13 * FRI` is Friday the 13th
only (croniter's default, like Vixie cron, would fire every 13th and every Friday).
"""

from __future__ import annotations

from datetime import datetime, timezone

from croniter import croniter
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from imagegen.core.documents import load_document
from imagegen.core.field_errors import fail, field_errors, show_value
from imagegen.core.settings import Settings
from imagegen.core.storable_text import storable_document
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs.intake import check_notify, job_name_from
from imagegen.jobs.spec import JobSpec, Limits, parse_job

# How croniter must read a six-field NCRONTAB expression (see the module docstring).
NCRONTAB = {"second_at_beginning": True, "day_or": False}


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    cron: str
    job: dict
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def six_field_ncrontab(cls, cron: str) -> str:
        if len(cron.split()) != 6 or not croniter.is_valid(cron, second_at_beginning=True):
            raise fail("cron_format",
                       "`{path}` must be a six-field NCRONTAB expression `second minute hour day month "
                       f"day-of-week`, e.g. '0 0 9 * * MON', got {show_value(cron)}")
        return cron


def parse_schedule(data: bytes, filename: str, limits: Limits | None = None,
                   settings: Settings | None = None) -> tuple[Schedule, JobSpec]:
    """Read a schedule file; errors name the field and the rule, as job errors do."""
    try:
        # As a job file is read: no aliases, no deeper than MAX_DEPTH (the job inside included).
        raw = load_document(data.decode("utf-8-sig"), filename=filename, what=f"`{filename}`")
    except UnicodeDecodeError as error:
        raise JobValidationError([FieldError(path="file", rule="encoding", message=(
            f"`{filename}` must be UTF-8 YAML: byte {error.start} is not"))]) from None
    except JobValidationError as error:  # the whole file is at fault: `syntax` or `max_depth`
        raise JobValidationError([e.model_copy(update={"path": "file"}) for e in error.errors]) from None
    if not isinstance(raw, dict):
        raise JobValidationError([FieldError(path="file", rule="mapping",
                                             message=f"`{filename}` must hold a mapping with `cron` and `job`")])
    raw = storable_document(raw)
    raw.setdefault("name", job_name_from(filename))
    try:
        schedule = Schedule.model_validate(raw)
    except ValidationError as error:
        raise JobValidationError(field_errors(error, Schedule)) from None
    try:
        job = parse_job(schedule.job, limits=limits)
        check_notify(job, settings)
    except JobValidationError as error:
        raise JobValidationError([e.model_copy(update={"path": f"job.{e.path}"}) for e in error.errors]) from None
    return schedule, job


def due_slot(cron: str, now: datetime, since: datetime) -> datetime | None:
    """The latest slot of `cron` in (since, now], or None when none came due."""
    slot = croniter(cron, now.astimezone(timezone.utc), ret_type=datetime, **NCRONTAB)
    latest = slot.get_prev(datetime)
    # croniter's get_prev is strictly before `now`; a slot exactly at `now` is due too.
    following = croniter(cron, latest, **NCRONTAB).get_next(datetime)
    if following <= now:
        latest = following
    return latest if latest > since else None
