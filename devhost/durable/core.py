"""The pure core of the durable engine: one orchestration episode, no I/O.

`run_episode(orchestrator, state, messages, now)` takes an instance's state (history and
bookkeeping), the messages that arrived for it (completions, timer fires, raised events,
control requests), replays the history plus the new events through the SDK's own
orchestrator handle, and returns what the engine must do: history events to append,
activities to run, timers to set, sub-orchestrations to start, and the new status.

Task ids. The SDK numbers tasks 0, 1, 2… as the code yields them, and a with-retry task
consumes two more ids per failed attempt (one for the retry timer, one for the next
attempt) at the moment the SDK *replays* the failure. To know those ids without reading
SDK internals, the core orders every episode's new events so that id-consuming retry
events (a failed attempt, a retry timer that leads to another attempt) come first: they
resume no user code, so they take the ids right after `state.next_id`, in order. The
actions the code yields afterwards take the ids after them, in the order they appear in
the SDK's action list (leaves of WhenAll/WhenAny depth first; WaitForExternalEvent takes
none, it is keyed by name).

The SDK returns *all* actions since the start; `state.action_count` says how many leaves
earlier episodes already acted on, so the new ones are the rest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Callable, cast

from devhost.durable import history as h
from devhost.durable.history import EventType

OUT_OF_PROC_MARKER = "$OutOfProcData$:"

# actionType values of the SDK's ActionType enum
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY = 0, 1
CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY = 2, 3
CONTINUE_AS_NEW, CREATE_TIMER, WAIT_FOR_EXTERNAL_EVENT = 4, 5, 6
CALL_ENTITY, CALL_HTTP, SIGNAL_ENTITY = 7, 8, 9
WHEN_ANY, WHEN_ALL = 11, 12

RUNNING, PENDING, SUSPENDED = "Running", "Pending", "Suspended"
COMPLETED, FAILED, TERMINATED, CONTINUED_AS_NEW = "Completed", "Failed", "Terminated", "ContinuedAsNew"
TERMINAL_STATUSES = (COMPLETED, FAILED, TERMINATED)

# The event types the SDK's replay reads. The others (TaskScheduled, TimerCreated,
# OrchestratorCompleted, ...) stay in the stored history but are not sent: the SDK skips
# them, yet parses each one's timestamp with dateutil, which is most of a replay's cost.
SDK_READS = frozenset([EventType.ORCHESTRATOR_STARTED, EventType.EXECUTION_STARTED,
                       EventType.TASK_COMPLETED, EventType.TASK_FAILED,
                       EventType.SUB_ORCHESTRATION_COMPLETED, EventType.SUB_ORCHESTRATION_FAILED,
                       EventType.TIMER_FIRED, EventType.EVENT_RAISED, EventType.CONTINUE_AS_NEW])


@dataclass
class Message:
    """One thing that happened to an instance, waiting for its next episode.

    kind: "start" (input in `text`), "event" (a history event in `event`),
    "terminate" / "suspend" / "resume" (reason in `text`).
    """
    kind: str
    event: dict | None = None
    text: str | None = None
    row_id: int | None = None   # the store's inbox row, so the engine can delete it once applied
    execution: str | None = None  # the instance generation it was sent to (engine bookkeeping)


@dataclass
class Retry:
    """A with-retry call in progress: which attempt, and what to call again."""
    kind: str                 # "activity" or "orchestrator"
    name: str
    input: str | None
    options: dict             # the action's retryOptions
    first_attempt_at: str     # timestamp text; retryTimeoutInMilliseconds counts from here
    attempt: int = 1
    instance_id: str | None = None   # sub-orchestrations only
    expired: bool = False     # retry timeout passed: remaining attempts fail at once
    last_reason: str = ""


@dataclass
class OrchestrationState:
    """What the core needs to know about one instance between episodes (JSON-serialisable)."""
    instance_id: str
    name: str
    input: str | None = None
    parent_instance_id: str | None = None
    history: list[dict] = field(default_factory=list)   # every event already played
    next_id: int = 0             # the SDK's task sequence number after the last episode
    action_count: int = 0        # action-list leaves earlier episodes already acted on
    suspended: bool = False
    attempts: dict[int, Retry] = field(default_factory=dict)      # attempt task id -> its retry
    retry_timers: dict[int, Retry] = field(default_factory=dict)  # retry timer id -> its retry
    open_timers: dict[int, int] = field(default_factory=dict)     # action-list leaf -> timer id

    def to_json(self) -> str:
        """Bookkeeping only; the history is stored row by row (and asdict would copy it)."""
        return json.dumps({
            "instance_id": self.instance_id, "name": self.name, "input": self.input,
            "parent_instance_id": self.parent_instance_id, "next_id": self.next_id,
            "action_count": self.action_count, "suspended": self.suspended,
            "attempts": {k: asdict(v) for k, v in self.attempts.items()},
            "retry_timers": {k: asdict(v) for k, v in self.retry_timers.items()},
            "open_timers": self.open_timers})

    @classmethod
    def from_json(cls, text: str, history: list[dict]) -> "OrchestrationState":
        data = json.loads(text)
        data["attempts"] = {int(k): Retry(**v) for k, v in data["attempts"].items()}
        data["retry_timers"] = {int(k): Retry(**v) for k, v in data["retry_timers"].items()}
        data["open_timers"] = {int(k): v for k, v in data.get("open_timers", {}).items()}
        return cls(history=history, **data)


@dataclass
class ActivityCall:
    task_id: int
    name: str
    input: str | None


@dataclass
class SubOrchestrationCall:
    task_id: int
    name: str
    instance_id: str
    input: str | None


@dataclass
class TimerCall:
    fire_at: str          # when the message becomes visible
    message: Message      # a TimerFired event, or an immediate failure for an expired retry


@dataclass
class Episode:
    """What one episode decided. `new_events` are already appended to `state.history`."""
    status: str
    new_events: list[dict] = field(default_factory=list)
    activities: list[ActivityCall] = field(default_factory=list)
    sub_orchestrations: list[SubOrchestrationCall] = field(default_factory=list)
    timers: list[TimerCall] = field(default_factory=list)
    cancelled_timers: list[int] = field(default_factory=list)   # ids of timers the code cancelled
    consumed: list[Message] = field(default_factory=list)    # applied; the engine deletes them
    kept: list[Message] = field(default_factory=list)        # held back while suspended
    output: str | None = None          # JSON text; for Failed/Terminated the JSON of the reason
    custom_status: str | None = None   # JSON text
    continue_input: str | None = None  # ContinueAsNew: the next generation's input JSON
    replayed: bool = False             # whether the orchestrator function was called


# ---- retry timing -------------------------------------------------------------------

def retry_delay(options: dict, failed_attempt: int) -> timedelta:
    """Delay before the next attempt, as Durable Task computes it (attempt counts from 1)."""
    first = float(options.get("firstRetryIntervalInMilliseconds", 1000))
    backoff = float(options.get("backoffCoefficient", 1) or 1)
    delay = first * backoff ** (failed_attempt - 1)
    cap = options.get("maxRetryIntervalInMilliseconds")
    if cap:
        delay = min(delay, float(cap))
    return timedelta(milliseconds=delay)


def retry_expired(retry: Retry, now: datetime) -> bool:
    timeout = retry.options.get("retryTimeoutInMilliseconds")
    if not timeout:
        return False
    return now - h.parse_time(retry.first_attempt_at) > timedelta(milliseconds=float(timeout))


# ---- the episode --------------------------------------------------------------------

def run_episode(orchestrator: Callable[[str], str], state: OrchestrationState,
                messages: list[Message], now: datetime) -> Episode:
    """Apply `messages` to `state` and replay it through `orchestrator` (the SDK handle)."""
    stamp = h.format_time(now)

    # 1. Control requests first: terminate ends everything; suspend holds the rest.
    terminate = next((m for m in messages if m.kind == "terminate"), None)
    if terminate is not None:
        episode = Episode(status=TERMINATED, consumed=list(messages), output=json.dumps(terminate.text or ""))
        _append(state, episode, [h.execution_terminated(terminate.text or "", stamp)])
        return episode
    control_events, work = _apply_suspend_resume(state, messages, stamp)
    if state.suspended:
        kept_ids = {id(m) for m in work}
        episode = Episode(status=SUSPENDED, kept=work, consumed=[m for m in messages if id(m) not in kept_ids])
        _append(state, episode, control_events)
        return episode

    # 2. The new events, id-consuming retry events first (see the module docstring).
    episode = Episode(status=RUNNING, consumed=list(messages), replayed=True)
    new_events = _new_events(state, work, control_events, episode, now)

    # 3. Replay through the SDK.
    result, error = _replay(orchestrator, state, new_events)
    if "customStatus" in result:
        episode.custom_status = json.dumps(result["customStatus"])

    # 4. New actions -> scheduling events and work.
    leaves = list(_leaves(result.get("actions") or [[]]))
    scheduled: list[dict] = []
    unsupported = None
    if error is None:
        scheduled, unsupported = _schedule_new_actions(state, leaves, episode, stamp)

    # 5. The outcome.
    finished = _outcome(state, episode, result, leaves, error or unsupported, stamp)
    _append(state, episode, new_events + scheduled + finished)
    return episode


def _apply_suspend_resume(state: OrchestrationState, messages: list[Message],
                          stamp: str) -> tuple[list[dict], list[Message]]:
    """(suspend/resume history events, the other messages), updating `state.suspended`."""
    control_events, work = [], []
    for message in messages:
        if message.kind == "suspend" and not state.suspended:
            state.suspended = True
            control_events.append(h.execution_suspended(message.text or "", stamp))
        elif message.kind == "resume" and state.suspended:
            state.suspended = False
            control_events.append(h.execution_resumed(message.text or "", stamp))
        elif message.kind not in ("suspend", "resume"):
            work.append(message)
    return control_events, work


def _new_events(state: OrchestrationState, work: list[Message], control_events: list[dict],
                episode: Episode, now: datetime) -> list[dict]:
    stamp = h.format_time(now)
    starts = [m for m in work if m.kind == "start"]
    if not state.history and not starts:
        raise ValueError(f"instance '{state.instance_id}' has no history and no start message")
    new_events = [h.orchestrator_started(stamp)]
    if starts:
        state.input = starts[-1].text
        new_events.append(h.execution_started(state.name, state.input, stamp,
                                              parent_instance_id=state.parent_instance_id))
    new_events += control_events
    events = [m.event for m in work if m.kind == "event" and m.event is not None]
    takes_ids = [_takes_retry_ids(state, e) for e in events]
    new_events += [_apply_retry_event(state, e, episode, now) for e, t in zip(events, takes_ids) if t]
    new_events += [e for e, t in zip(events, takes_ids) if not t]
    for event in new_events:
        _settle(state, event)
    return new_events


def _replay(orchestrator: Callable[[str], str], state: OrchestrationState,
            new_events: list[dict]) -> tuple[dict, str | None]:
    """(the SDK's state dict, the orchestrator's error or None)."""
    replay = [e for e in state.history if e["EventType"] in SDK_READS] + new_events
    context = {"history": replay, "input": state.input, "instanceId": state.instance_id,
               "isReplaying": False, "parentInstanceId": state.parent_instance_id,
               "upperSchemaVersion": 1, "upperSchemaVersionNew": 2}
    try:
        return json.loads(orchestrator(json.dumps(context))), None
    except Exception as exc:   # the SDK re-raises orchestrator errors with its state attached
        text = str(exc)
        if OUT_OF_PROC_MARKER not in text:
            return {"actions": [[]]}, f"{type(exc).__name__}: {text}"
        head, _, data = text.partition(OUT_OF_PROC_MARKER)
        result = json.loads(data)
        return result, result.get("error") or head.strip()


def _schedule_new_actions(state: OrchestrationState, leaves: list[dict], episode: Episode,
                          stamp: str) -> tuple[list[dict], str | None]:
    """(scheduling history events, why the instance must fail or None) for the new leaves."""
    scheduled: list[dict] = []
    episode.cancelled_timers = _cancelled_timers(state, leaves)
    for index, action in enumerate(leaves[state.action_count:], start=state.action_count):
        kind = action.get("actionType")
        if kind in (CALL_ENTITY, SIGNAL_ENTITY):
            api = "call_entity" if kind == CALL_ENTITY else "signal_entity"
            return scheduled, (f"entities are not supported by devhost: orchestrator '{state.name}' "
                               f"used {api} on entity {action.get('instanceId')!r}")
        if kind == CALL_HTTP:
            return scheduled, (f"durable HTTP (call_http) is not supported by devhost: orchestrator "
                               f"'{state.name}' called {action.get('httpRequest', {}).get('uri')!r}")
        if kind in (WAIT_FOR_EXTERNAL_EVENT, CONTINUE_AS_NEW):
            continue   # keyed by name / handled as the outcome: no task id
        task_id = state.next_id
        state.next_id += 1
        if kind == CREATE_TIMER and not action.get("isCanceled"):
            state.open_timers[index] = task_id
        scheduled.append(_schedule(state, action, task_id, episode, stamp))
    state.action_count = len(leaves)
    return scheduled, None


def _cancelled_timers(state: OrchestrationState, leaves: list[dict]) -> list[int]:
    """Ids of timers the code cancelled (`timer.cancel()` after a task_any), so the engine
    can drop them instead of waking the instance for nothing when they are due."""
    cancelled = [timer_id for index, timer_id in state.open_timers.items()
                 if index < len(leaves) and leaves[index].get("isCanceled")]
    for index in [i for i, t in state.open_timers.items() if t in cancelled]:
        del state.open_timers[index]
    return cancelled


def _outcome(state: OrchestrationState, episode: Episode, result: dict, leaves: list[dict],
             failure: str | None, stamp: str) -> list[dict]:
    """Set the episode's status and output; returns the closing history events."""
    finished = [h.orchestrator_completed(stamp)]
    if failure is None and not result.get("isDone"):
        return finished
    # a finished instance starts nothing more, whatever this episode asked for
    episode.activities, episode.sub_orchestrations, episode.timers = [], [], []
    continuation = [a for a in leaves if a.get("actionType") == CONTINUE_AS_NEW]
    if failure is not None:
        episode.status = FAILED
        episode.output = json.dumps(f"Orchestrator function '{state.name}' failed: {failure}")
        finished.append(h.execution_failed(failure, stamp))
    elif continuation:
        episode.status = CONTINUED_AS_NEW
        episode.continue_input = continuation[-1].get("input")
        finished.append(h.continue_as_new(episode.continue_input, stamp))
    else:
        episode.status = COMPLETED
        episode.output = json.dumps(result.get("output"))
        finished.append(h.execution_completed(episode.output, stamp))
    return finished


def _append(state: OrchestrationState, episode: Episode, events: list[dict]) -> None:
    """Record `events` as played: stored history always has IsPlayed true."""
    played = [{**e, "IsPlayed": True} for e in events]
    state.history.extend(played)
    episode.new_events.extend(played)


def _leaves(actions):
    """Atomic actions in the SDK's id order: WhenAll/WhenAny children depth first."""
    for item in actions:
        if isinstance(item, list):
            yield from _leaves(item)
        elif item.get("actionType") in (WHEN_ALL, WHEN_ANY):
            yield from _leaves(item.get("compoundActions") or [])
        else:
            yield item


def _schedule(state: OrchestrationState, action: dict, task_id: int, episode: Episode,
              stamp: str) -> dict:
    """One new action -> its history event and the work it asks for."""
    kind = action["actionType"]
    # Every call action names its function; `action` is the SDK's JSON, so say so to the checker.
    name, input_json = cast(str, action.get("functionName")), action.get("input")
    if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
        if kind == CALL_ACTIVITY_WITH_RETRY:
            state.attempts[task_id] = Retry("activity", name, input_json,
                                            action.get("retryOptions") or {}, stamp)
        episode.activities.append(ActivityCall(task_id, name, input_json))
        return h.task_scheduled(task_id, name, input_json, stamp)
    if kind in (CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
        instance_id = action.get("instanceId") or f"{state.instance_id}:{task_id}"
        if kind == CALL_SUB_ORCHESTRATOR_WITH_RETRY:
            state.attempts[task_id] = Retry("orchestrator", name, input_json,
                                            action.get("retryOptions") or {}, stamp,
                                            instance_id=action.get("instanceId"))
        episode.sub_orchestrations.append(SubOrchestrationCall(task_id, name, instance_id, input_json))
        return h.sub_orchestration_created(task_id, name, instance_id, input_json, stamp)
    if kind == CREATE_TIMER:
        fire_at = action["fireAt"]
        episode.timers.append(TimerCall(fire_at, Message("event", h.timer_fired(task_id, fire_at))))
        return h.timer_created(task_id, fire_at, stamp)
    raise ValueError(f"action type {kind} of orchestrator '{state.name}' is not known to devhost: {action}")


# ---- retries ------------------------------------------------------------------------

FAILURES = (EventType.TASK_FAILED, EventType.SUB_ORCHESTRATION_FAILED)
SUCCESSES = (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_COMPLETED)


def _takes_retry_ids(state: OrchestrationState, event: dict) -> bool:
    """Whether the SDK will consume a task id when it replays `event`."""
    kind = event["EventType"]
    if kind in FAILURES:
        return event["TaskScheduledId"] in state.attempts
    if kind == EventType.TIMER_FIRED:
        retry = state.retry_timers.get(event["TimerId"])
        return retry is not None and retry.attempt < _max_attempts(retry)
    return False


def _max_attempts(retry: Retry) -> int:
    return int(retry.options.get("maxNumberOfAttempts", 1))


def _apply_retry_event(state: OrchestrationState, event: dict, episode: Episode,
                       now: datetime) -> dict:
    """A failed attempt sets a retry timer; a fired retry timer starts the next attempt."""
    stamp = h.format_time(now)
    if event["EventType"] in FAILURES:
        retry = state.attempts.pop(event["TaskScheduledId"])
        retry.last_reason = event.get("Reason") or ""
        if retry_expired(retry, now):
            retry.expired = True
        delay = timedelta(0) if retry.expired else retry_delay(retry.options, retry.attempt)
        timer_id = state.next_id
        state.next_id += 1
        state.retry_timers[timer_id] = retry
        fire_at = h.format_time(now + delay)
        episode.timers.append(TimerCall(fire_at, Message("event", h.timer_fired(timer_id, fire_at))))
        return event
    # a retry timer fired and attempts remain: the SDK re-schedules with the next id
    retry = state.retry_timers.pop(event["TimerId"])
    task_id = state.next_id
    state.next_id += 1
    retry.attempt += 1
    state.attempts[task_id] = retry
    if retry.expired:
        timeout = retry.options.get("retryTimeoutInMilliseconds")
        reason = (f"retry timeout of {timeout} ms for '{retry.name}' passed; "
                  f"attempt {retry.attempt} not run. Last error: {retry.last_reason}")
        failure = (h.task_failed if retry.kind == "activity" else h.sub_orchestration_failed)(
            task_id, reason, "", stamp)
        episode.timers.append(TimerCall(stamp, Message("event", failure)))
    elif retry.kind == "activity":
        episode.activities.append(ActivityCall(task_id, retry.name, retry.input))
    else:
        instance_id = retry.instance_id or f"{state.instance_id}:{task_id}"
        episode.sub_orchestrations.append(
            SubOrchestrationCall(task_id, retry.name, instance_id, retry.input))
    return event


def _settle(state: OrchestrationState, event: dict) -> None:
    """Forget retries that ended (an attempt succeeded, or the last timer fired) and fired timers."""
    kind = event["EventType"]
    if kind in SUCCESSES:
        state.attempts.pop(event["TaskScheduledId"], None)
    elif kind == EventType.TIMER_FIRED:
        fired = [index for index, timer_id in state.open_timers.items() if timer_id == event["TimerId"]]
        for index in fired:
            del state.open_timers[index]
        retry = state.retry_timers.get(event["TimerId"])
        if retry is not None and retry.attempt >= _max_attempts(retry):
            del state.retry_timers[event["TimerId"]]
