"""History events as the Durable SDK reads them, and one factory per event type.

An event is a plain dict in the exact JSON shape the SDK's `HistoryEvent(**event)` takes:
`EventType`, `EventId`, `IsPlayed`, `Timestamp` plus the fields of its type (see
/work/shared/reference/durable-host-protocol.md, section 2). Plain dicts because the
engine stores them as JSON text and hands them to the SDK unchanged; the factories keep
tests to one line per event:

    history = [orchestrator_started(t0), execution_started("hello", "null"),
               task_scheduled(0, "say_hi"), orchestrator_completed(t0),
               orchestrator_started(t1), task_completed(0, '"hi"')]
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"   # the SDK's DATETIME_STRING_FORMAT


class EventType(enum.IntEnum):
    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_CREATED = 7
    SUB_ORCHESTRATION_COMPLETED = 8
    SUB_ORCHESTRATION_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


def format_time(moment: datetime) -> str:
    """UTC text the SDK parses back to an aware datetime (naive values are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime(TIMESTAMP_FORMAT)


def parse_time(text: str) -> datetime:
    """Inverse of `format_time`; also accepts the SDK's `fireAt` text."""
    text = text.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _event(kind: EventType, at: datetime | str | None, event_id: int = -1, **fields) -> dict:
    if at is None:
        at = utcnow()
    timestamp = at if isinstance(at, str) else format_time(at)
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
            "Timestamp": timestamp, **fields}


def orchestrator_started(at: datetime | str | None = None) -> dict:
    """Opens every episode; its timestamp becomes `context.current_utc_datetime`."""
    return _event(EventType.ORCHESTRATOR_STARTED, at)


def orchestrator_completed(at: datetime | str | None = None) -> dict:
    return _event(EventType.ORCHESTRATOR_COMPLETED, at)


def execution_started(name: str, input_json: str | None, at: datetime | str | None = None,
                      *, parent_instance_id: str | None = None) -> dict:
    return _event(EventType.EXECUTION_STARTED, at, Name=name, Input=input_json, Version="",
                  ParentInstanceId=parent_instance_id)


def execution_completed(result_json: str | None, at: datetime | str | None = None) -> dict:
    return _event(EventType.EXECUTION_COMPLETED, at, Result=result_json, OrchestrationStatus="Completed")


def execution_failed(reason: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.EXECUTION_FAILED, at, Reason=reason, OrchestrationStatus="Failed")


def execution_terminated(reason: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.EXECUTION_TERMINATED, at, Input=reason)


def execution_suspended(reason: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.EXECUTION_SUSPENDED, at, Reason=reason)


def execution_resumed(reason: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.EXECUTION_RESUMED, at, Reason=reason)


def continue_as_new(input_json: str | None, at: datetime | str | None = None) -> dict:
    return _event(EventType.CONTINUE_AS_NEW, at, Input=input_json)


def task_scheduled(task_id: int, name: str, input_json: str | None = None,
                   at: datetime | str | None = None) -> dict:
    return _event(EventType.TASK_SCHEDULED, at, task_id, Name=name, Input=input_json)


def task_completed(task_id: int, result_json: str | None, at: datetime | str | None = None) -> dict:
    return _event(EventType.TASK_COMPLETED, at, TaskScheduledId=task_id, Result=result_json)


def task_failed(task_id: int, reason: str, details: str = "", at: datetime | str | None = None) -> dict:
    return _event(EventType.TASK_FAILED, at, TaskScheduledId=task_id, Reason=reason, Details=details)


def sub_orchestration_created(task_id: int, name: str, instance_id: str, input_json: str | None = None,
                              at: datetime | str | None = None) -> dict:
    return _event(EventType.SUB_ORCHESTRATION_CREATED, at, task_id, Name=name,
                  InstanceId=instance_id, Input=input_json)


def sub_orchestration_completed(task_id: int, result_json: str | None,
                                at: datetime | str | None = None) -> dict:
    return _event(EventType.SUB_ORCHESTRATION_COMPLETED, at, TaskScheduledId=task_id, Result=result_json)


def sub_orchestration_failed(task_id: int, reason: str, details: str = "",
                             at: datetime | str | None = None) -> dict:
    return _event(EventType.SUB_ORCHESTRATION_FAILED, at, TaskScheduledId=task_id,
                  Reason=reason, Details=details)


def timer_created(timer_id: int, fire_at: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.TIMER_CREATED, at, timer_id, FireAt=fire_at)


def timer_fired(timer_id: int, fire_at: str, at: datetime | str | None = None) -> dict:
    return _event(EventType.TIMER_FIRED, at, TimerId=timer_id, FireAt=fire_at)


def event_raised(name: str, input_json: str | None, at: datetime | str | None = None) -> dict:
    return _event(EventType.EVENT_RAISED, at, Name=name, Input=input_json)
