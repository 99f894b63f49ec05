"""Instance status bodies in the Durable HTTP API's shape, and the instance list query."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from devhost.durable.history import EventType

# history fields that carry payloads: shown only with showHistoryOutput
_PAYLOAD_FIELDS = ("Input", "Result", "Details")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_or_none(text: str | None):
    return None if text is None else json.loads(text)


def instance_status(row, events: list[dict] | None, *, show_input: bool = True,
                    show_history_output: bool = False) -> dict:
    """The status body: name, instanceId, runtimeStatus, input, customStatus, output, times."""
    body = {
        "name": row["name"],
        "instanceId": row["instance_id"],
        "runtimeStatus": row["status"],
        "input": _json_or_none(row["input"]) if show_input else None,
        "customStatus": _json_or_none(row["custom_status"]),
        "output": _json_or_none(row["output"]),
        "createdTime": _iso(row["created"]),
        "lastUpdatedTime": _iso(row["updated"]),
    }
    if events is not None:
        body["historyEvents"] = public_history(events, show_history_output)
    return body


# What the extension leaves out of `showHistory`, and which scheduling event each completion
# takes its `FunctionName` and `ScheduledTime` from.
_HIDDEN = (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED,
           EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED)
_COMPLETIONS = (EventType.TASK_COMPLETED, EventType.TASK_FAILED,
                EventType.SUB_ORCHESTRATION_COMPLETED, EventType.SUB_ORCHESTRATION_FAILED)


def public_history(events: list[dict], with_payloads: bool) -> list[dict]:
    """History as the extension shows it: a task's scheduling merged into its completion
    (`FunctionName`, `ScheduledTime`), payloads as JSON values."""
    scheduled = {e["EventId"]: e for e in events
                 if e["EventType"] in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_CREATED)}
    shown = []
    for event in events:
        if event["EventType"] in _HIDDEN:
            continue
        out = _public_event(event, with_payloads)
        origin = scheduled.get(event.get("TaskScheduledId")) if event["EventType"] in _COMPLETIONS else None
        if origin is not None:
            out["FunctionName"] = origin.get("Name")
            out["ScheduledTime"] = origin["Timestamp"]
            out.pop("TaskScheduledId", None)
        shown.append(out)
    return shown


def _public_event(event: dict, with_payloads: bool) -> dict:
    out = {"EventType": EventType(event["EventType"]).name.title().replace("_", ""),
           "Timestamp": event["Timestamp"]}
    for key, value in event.items():
        if key in ("EventType", "Timestamp", "IsPlayed") or value is None:
            continue
        if key in _PAYLOAD_FIELDS and not with_payloads:
            continue
        if key == "Name":
            key = "FunctionName"
        if key in ("Input", "Result") and isinstance(value, str):
            try:
                value = json.loads(value)  # the extension shows the value, not its JSON text
            except ValueError:
                pass
        out[key] = value
    return out


def _epoch(moment) -> float:
    if isinstance(moment, (int, float)):
        return float(moment)
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def list_query(created_from, created_to, statuses, prefix, top, continuation):
    """SQL for one page of instances, oldest first; and a function making the next page's token.

    The token is the (created, instance id) of the page's last row, as opaque text."""
    where, params = [], []
    if created_from is not None:
        where.append("created >= ?")
        params.append(_epoch(created_from))
    if created_to is not None:
        where.append("created <= ?")
        params.append(_epoch(created_to))
    if statuses:
        where.append(f"status IN ({', '.join('?' * len(statuses))})")
        params.extend(statuses)
    if prefix:
        where.append("substr(instance_id, 1, ?) = ?")
        params.extend([len(prefix), prefix])
    if continuation:
        try:
            created, instance_id = json.loads(continuation)
        except (ValueError, TypeError):
            raise ValueError(f"`continuation` must be a token returned by list_instances, got {continuation!r}")
        where.append("(created, instance_id) > (?, ?)")
        params.extend([created, instance_id])
    sql = "SELECT * FROM instances"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created, instance_id"
    if top is not None:
        if top < 1:
            raise ValueError(f"`top` must be at least 1, got {top}")
        sql += f" LIMIT {int(top) + 1}"
    return sql, params, lambda row: json.dumps([row["created"], row["instance_id"]])
