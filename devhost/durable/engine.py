"""The durable engine's I/O loop: episodes, the activity worker pool, timers, the task hub.

All decisions are made by the pure `core.run_episode`; this module moves messages between
the SQLite task hub (`store`), the SDK orchestrators and the activity functions.

Flow: a message (start, completion, timer, raised event, control request) is written to
the inbox in the same transaction as the change that caused it, then delivered in memory
to its instance. An instance with messages gets one episode at a time (at most
`max_orchestrators` at once); all messages that arrived meanwhile go into that one
episode, so a 1,000-way fan-out replays once per completion *wave*, not per completion.
The episode's effects (history, work, timers, children, status) are one transaction.
While a fan-out still has activities in flight, an episode waits briefly for more of
them (`_gather_completions`). Activities run on `max_activities` worker threads
(`workers.py`; async functions on this loop); their completions are written in batches.

Public API (used by the devhost host): `DurableEngine` below. Beyond the issue's list it
has `stats` (`EngineStats`: episodes run, time spent replaying, activities started,
scheduling-to-start delays) for benchmarks. `restart(id, False)` on an unfinished
instance raises `InstanceExists`, like `start_new`.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from devhost.durable import core
from devhost.durable import history as h
from devhost.durable.core import Message, OrchestrationState
from devhost.durable.errors import InstanceExists, InstanceNotFound, InstanceNotRunning, UnknownOrchestrator
from devhost.durable.registry import Registry
from devhost.durable.status import instance_status, list_query
from devhost.durable.store import Store, WorkItem
from devhost.durable.workers import ActivityWorkers

log = logging.getLogger("devhost.durable")

ACTIVE_STATUSES = (core.PENDING, core.RUNNING, core.SUSPENDED, core.CONTINUED_AS_NEW)


@dataclass
class EngineStats:
    episodes: int = 0
    episode_seconds: float = 0.0     # time spent replaying (in the orchestrator threads)
    activities_started: int = 0
    start_delays: deque = field(default_factory=lambda: deque(maxlen=100_000))  # seconds


@dataclass
class _Live:
    """An unfinished instance as the loop keeps it in memory."""
    state: OrchestrationState
    execution: str
    status: str
    parent: tuple[str, int, str] | None     # (instance id, task id, execution) of the caller
    held: list[Message] = field(default_factory=list)   # kept while suspended
    in_flight: int = 0             # activities scheduled and not yet completed
    completions_seen: int = 0      # activity completions already in the history
    last_replay: float = 0.0       # seconds the last episode took
    timers: dict[int, Message] = field(default_factory=dict)   # timer id -> its pending TimerFired


_ACTIVITY_RESULTS = (h.EventType.TASK_COMPLETED, h.EventType.TASK_FAILED)


def _is_activity_result(message: Message) -> bool:
    return message.kind == "event" and message.event is not None and message.event["EventType"] in _ACTIVITY_RESULTS


def _message_json(message: Message) -> dict:
    return {"kind": message.kind, "event": message.event, "text": message.text}


def _message_from(row) -> Message:
    data = json.loads(row["message"])
    return Message(data["kind"], data.get("event"), data.get("text"), row["id"], row["execution"])


class DurableEngine:
    def __init__(self, registry: Registry, store_path: str | Path = ":memory:", *,
                 max_activities: int = 10, max_orchestrators: int = 10, task_hub: str = "TestHubName"):
        if max_activities < 1 or max_orchestrators < 1:
            raise ValueError("`max_activities` and `max_orchestrators` must be at least 1, "
                             f"got {max_activities} and {max_orchestrators}")
        self.registry = registry
        self.store_path = store_path
        self.max_activities = max_activities
        self.max_orchestrators = max_orchestrators
        self.task_hub = task_hub
        self.stats = EngineStats()
        # Called on the loop after activities finish: the host has its queue triggers look at
        # once (an activity may have sent a message) rather than after their poll interval.
        self.after_activities: Callable[[], None] | None = None
        self._opened: Store | None = None  # the task hub, from start() on
        self._started = False

    @property
    def _store(self) -> Store:
        assert self._opened is not None, "the durable engine has not started"
        return self._opened

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the task hub and resume every unfinished instance, timer and activity."""
        self._loop = asyncio.get_running_loop()
        self._opened = Store(self.store_path)
        self._orchestrator_slots = asyncio.Semaphore(self.max_orchestrators)
        self._workers = ActivityWorkers(self.registry, self.max_activities, self._loop,
                                        self._record_completions, self.stats.start_delays)
        self._orchestrator_pool = ThreadPoolExecutor(self.max_orchestrators,
                                                     thread_name_prefix="devhost-orchestrator")
        self._live: dict[str, _Live] = {}
        self._inbox: dict[str, list[Message]] = {}
        self._timers: list = []            # heap of (visible_at, seq, instance_id, Message)
        self._timer_seq = itertools.count()
        self._timer_wake = asyncio.Event()
        self._driving: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._arrivals: dict[str, asyncio.Future] = {}   # instances gathering completions
        self._cancelled: set[int] = set()                 # inbox rows of cancelled timers
        self._started = True
        for row in self._store.unfinished_instances():
            state = OrchestrationState.from_json(row["core"], self._store.history(row["instance_id"]))
            parent = ((row["parent_instance_id"], row["parent_task_id"], row["parent_execution"])
                      if row["parent_instance_id"] else None)
            seen = sum(1 for e in state.history if e["EventType"] in _ACTIVITY_RESULTS)
            self._live[row["instance_id"]] = _Live(state, row["execution"], row["status"], parent,
                                                   completions_seen=seen)
        for row in self._store.inbox():
            message = _message_from(row)
            self._remember_timer(row["instance_id"], message)
            self._deliver(row["instance_id"], message, row["visible_at"])
        for item in self._store.work():
            live = self._live.get(item.instance_id)
            if live is not None:
                live.in_flight += 1
            self._workers.submit(item)
        self._spawn(self._timer_loop())

    async def stop(self) -> None:
        """Stop the loop; running sync activities are waited for (their results are not
        recorded, so they run again on the next start, as after a crash)."""
        if not self._started:
            return
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._workers.stop()
        self._orchestrator_pool.shutdown(wait=True, cancel_futures=True)
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        self._store.close()

    def _spawn(self, coroutine) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        # A loop task that dies is an engine bug: say so, or the instance just hangs.
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("devhost durable engine task failed", exc_info=task.exception())

    # ---- client operations -----------------------------------------------------------

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        if name not in self.registry.orchestrators:
            raise UnknownOrchestrator(name, sorted(self.registry.orchestrators))
        instance_id = instance_id or uuid.uuid4().hex
        after: list = []
        with self._store.transaction() as db:
            failure = self._create_instance(db, instance_id, name, input_json, None, after)
        if failure is not None:
            raise failure
        for step in after:
            step()
        return instance_id

    async def get_status(self, instance_id: str, *, show_history: bool = False,
                   show_history_output: bool = False, show_input: bool = True) -> dict | None:
        row = self._store.instance(instance_id)
        if row is None:
            return None
        events = self._store.history(instance_id) if show_history else None
        return instance_status(row, events, show_input=show_input, show_history_output=show_history_output)

    async def list_instances(self, *, created_from=None, created_to=None, statuses: list[str] | None = None,
                       prefix: str | None = None, top: int | None = None,
                       continuation: str | None = None) -> tuple[list[dict], str | None]:
        sql, params, cursor_of = list_query(created_from, created_to, statuses, prefix, top, continuation)
        rows = self._store.query(sql, params)
        token = None
        if top is not None and len(rows) > top:
            rows = rows[:top]
            token = cursor_of(rows[-1])
        return [instance_status(row, None) for row in rows], token

    async def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        self._post(instance_id, Message("event", h.event_raised(event_name, data_json)))

    async def terminate(self, instance_id: str, reason: str) -> None:
        self._post(instance_id, Message("terminate", text=reason))

    async def suspend(self, instance_id: str, reason: str) -> None:
        self._post(instance_id, Message("suspend", text=reason))

    async def resume(self, instance_id: str, reason: str) -> None:
        self._post(instance_id, Message("resume", text=reason))

    async def restart(self, instance_id: str, restart_with_new_instance_id: bool = True) -> str:
        row = self._store.instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        new_id = uuid.uuid4().hex if restart_with_new_instance_id else instance_id
        return await self.start_new(row["name"], new_id, row["input"])

    async def purge(self, instance_id: str) -> int:
        with self._store.transaction() as db:
            count = Store.delete_instance(db, instance_id)
        self._forget(instance_id)
        return count

    async def purge_by(self, *, created_from=None, created_to=None, statuses=None) -> int:
        sql, params, _ = list_query(created_from, created_to,
                                    statuses or list(core.TERMINAL_STATUSES), None, None, None)
        ids = [row["instance_id"] for row in self._store.query(sql, params)]
        with self._store.transaction() as db:
            count = sum(Store.delete_instance(db, i) for i in ids)
        for instance_id in ids:
            self._forget(instance_id)
        return count

    async def wait_for(self, instance_id: str, timeout: float) -> dict | None:
        """The status once the instance is Completed, Failed or Terminated; None at timeout."""
        status = await self.get_status(instance_id)
        if status is None:
            raise InstanceNotFound(instance_id)
        if status["runtimeStatus"] in core.TERMINAL_STATUSES:
            return status
        waiter = self._loop.create_future()
        self._waiters.setdefault(instance_id, []).append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(instance_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
        return await self.get_status(instance_id)

    def _post(self, instance_id: str, message: Message) -> None:
        """Record a client's message for an unfinished instance and deliver it."""
        row = self._store.instance(instance_id)
        if row is None:
            raise InstanceNotFound(instance_id)
        if row["status"] not in ACTIVE_STATUSES:
            raise InstanceNotRunning(instance_id, row["status"])
        now = time.time()
        with self._store.transaction() as db:
            message.row_id = Store.add_message(db, instance_id, row["execution"], _message_json(message), now)
        message.execution = row["execution"]
        self._deliver(instance_id, message, now)

    def _forget(self, instance_id: str) -> None:
        self._live.pop(instance_id, None)
        self._inbox.pop(instance_id, None)

    # ---- instances -------------------------------------------------------------------

    def _create_instance(self, db, instance_id: str, name: str, input_json: str | None,
                         parent: tuple[str, int, str] | None, after: list):
        """Insert a Pending instance and its start message; returns an error instead if the
        id is taken by an unfinished instance or the orchestrator is unknown."""
        if name not in self.registry.orchestrators:
            return UnknownOrchestrator(name, sorted(self.registry.orchestrators))
        status = Store.instance_status(db, instance_id)
        if status in ACTIVE_STATUSES:
            return InstanceExists(instance_id, status)
        Store.delete_instance(db, instance_id)
        now = time.time()
        execution = uuid.uuid4().hex
        state = OrchestrationState(instance_id, name, input_json, parent[0] if parent else None)
        Store.insert_instance(db, instance_id, name, core.PENDING, input_json, now, parent,
                              execution, state.to_json())
        start = Message("start", text=input_json, execution=execution)
        start.row_id = Store.add_message(db, instance_id, execution, _message_json(start), now)

        def publish():
            self._forget(instance_id)
            self._live[instance_id] = _Live(state, execution, core.PENDING, parent)
            self._deliver(instance_id, start, now)
        after.append(publish)
        return None

    def _deliver(self, instance_id: str, message: Message, visible_at: float) -> None:
        if visible_at > time.time():
            heapq.heappush(self._timers, (visible_at, next(self._timer_seq), instance_id, message))
            self._timer_wake.set()
            return
        self._inbox.setdefault(instance_id, []).append(message)
        arrival = self._arrivals.get(instance_id)
        if arrival is not None and not arrival.done():
            arrival.set_result(None)
        if instance_id not in self._driving:
            self._driving.add(instance_id)
            self._spawn(self._drive(instance_id))

    async def _timer_loop(self) -> None:
        while True:
            now = time.time()
            while self._timers and self._timers[0][0] <= now:
                _, _, instance_id, message = heapq.heappop(self._timers)
                if message.row_id in self._cancelled:
                    self._cancelled.discard(message.row_id)
                    continue
                self._deliver(instance_id, message, now)
            delay = self._timers[0][0] - now if self._timers else None
            self._timer_wake.clear()
            try:
                await asyncio.wait_for(self._timer_wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    # ---- episodes --------------------------------------------------------------------

    async def _drive(self, instance_id: str) -> None:
        """Run episodes for one instance while it has messages (one at a time)."""
        try:
            while self._inbox.get(instance_id):
                await self._gather_completions(instance_id)
                async with self._orchestrator_slots:
                    await self._episode(instance_id)
        finally:
            self._driving.discard(instance_id)

    async def _gather_completions(self, instance_id: str) -> None:
        """Hold an episode back briefly while more activity completions are on their way.

        A replay costs time in proportion to the history, so replaying a big fan-out for
        every few completions makes it quadratic (and starves the activity threads of the
        GIL). While the instance has activities in flight and the waiting messages are
        only activity completions, fewer than it has already seen, wait for more: at most
        twice the last replay's duration (10 ms to 200 ms). Anything else (a raised
        event, a timer, a control request, the last completion) goes through at once.
        """
        live = self._live.get(instance_id)
        if live is None:
            return
        deadline = self._loop.time() + min(0.2, max(0.01, 2 * live.last_replay))
        while True:
            pending = self._inbox.get(instance_id, [])
            if (not pending or live.in_flight == 0 or len(pending) >= max(1, live.completions_seen)
                    or not all(_is_activity_result(m) for m in pending)):
                return
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return
            arrival = self._arrivals[instance_id] = self._loop.create_future()
            try:
                await asyncio.wait_for(arrival, remaining)
            except asyncio.TimeoutError:
                return
            finally:
                self._arrivals.pop(instance_id, None)

    async def _episode(self, instance_id: str) -> None:
        messages = self._inbox.pop(instance_id, [])
        live = self._live.get(instance_id)
        current = [m for m in messages if live is not None and m.execution == live.execution]
        stale = [m for m in messages if live is None or m.execution != live.execution]
        if live is None or live.status in core.TERMINAL_STATUSES or not current:
            self._delete_messages(messages)
            return
        self._delete_messages(stale)
        batch, live.held = live.held + current, []
        for message in batch:
            if message.kind == "event" and message.event is not None and message.event["EventType"] == h.EventType.TIMER_FIRED:
                live.timers.pop(message.event["TimerId"], None)
        orchestrator = self.registry.orchestrators.get(live.state.name)
        if orchestrator is None:
            orchestrator = functools.partial(_missing_orchestrator, live.state.name,
                                             sorted(self.registry.orchestrators))
        self.stats.episodes += 1
        began = time.perf_counter()
        try:
            episode = await self._loop.run_in_executor(
                self._orchestrator_pool, self._timed_episode, orchestrator, live.state, batch)
        except Exception as exc:   # a devhost bug, not the orchestrator's: fail loudly, don't hang
            log.exception("episode of instance '%s' failed inside devhost", instance_id)
            episode = core.Episode(status=core.FAILED, consumed=batch,
                                   output=json.dumps(f"devhost engine error in '{live.state.name}': "
                                                     f"{type(exc).__name__}: {exc}"))
        if self._live.get(instance_id) is not live:   # purged while it replayed
            return
        live.held = episode.kept
        live.last_replay = time.perf_counter() - began
        live.completions_seen += sum(1 for m in batch if _is_activity_result(m))
        self._commit(instance_id, live, episode)

    def _timed_episode(self, orchestrator, state: OrchestrationState, batch: list[Message]) -> core.Episode:
        began = time.perf_counter()
        try:
            return core.run_episode(orchestrator, state, batch, datetime.now(timezone.utc))
        finally:
            self.stats.episode_seconds += time.perf_counter() - began

    def _delete_messages(self, messages: list[Message]) -> None:
        if messages:
            with self._store.transaction() as db:
                Store.delete_messages(db, [m.row_id for m in messages if m.row_id is not None])

    def _commit(self, instance_id: str, live: _Live, episode: core.Episode) -> None:
        """Everything one episode decided, in one transaction; then act on it."""
        now = time.time()
        after: list = []
        state = live.state
        with self._store.transaction() as db:
            Store.delete_messages(db, [m.row_id for m in episode.consumed if m.row_id is not None])
            first = len(state.history) - len(episode.new_events)
            Store.append_history(db, instance_id, first, episode.new_events)
            for call in episode.activities:
                self._schedule_activity(db, instance_id, live.execution, call, now, after)
            for timer in episode.timers:
                visible_at = h.parse_time(timer.fire_at).timestamp()
                self._add_message(db, instance_id, live.execution, timer.message, visible_at, after)
                self._remember_timer(instance_id, timer.message, live)
            for timer_id in episode.cancelled_timers:
                message = live.timers.pop(timer_id, None)
                if message is not None and message.row_id is not None:  # a pending timer is stored
                    Store.delete_messages(db, [message.row_id])
                    self._cancelled.add(message.row_id)
            for sub in episode.sub_orchestrations:
                failure = self._create_instance(db, sub.instance_id, sub.name, sub.input,
                                                (instance_id, sub.task_id, live.execution), after)
                if failure is not None:
                    event = h.sub_orchestration_failed(sub.task_id, str(failure))
                    self._add_message(db, instance_id, live.execution, Message("event", event), now, after)
            status = episode.status
            if status in core.TERMINAL_STATUSES:
                Store.drop_pending(db, instance_id)
                if live.parent is not None:
                    self._notify_parent(db, live, episode, now, after)
            elif status == core.CONTINUED_AS_NEW:
                self._continue_as_new(db, instance_id, live, episode, now, after)
            Store.update_instance(db, instance_id, status, live.state.input, episode.output,
                                  episode.custom_status, episode.replayed, now, live.execution,
                                  live.state.to_json())
        live.status = status
        if status == core.FAILED:
            log.warning("instance '%s' (%s) failed: %s", instance_id, live.state.name,
                        json.loads(episode.output) if episode.output else "")
        for step in after:
            step()
        if status in core.TERMINAL_STATUSES:
            self._live.pop(instance_id, None)
            for waiter in self._waiters.pop(instance_id, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _remember_timer(self, instance_id: str, message: Message, live: _Live | None = None) -> None:
        """Index pending TimerFired messages by timer id, so a cancelled timer can be dropped."""
        live = live or self._live.get(instance_id)
        if (live is not None and message.kind == "event" and message.event is not None
                and message.event["EventType"] == h.EventType.TIMER_FIRED):
            live.timers[message.event["TimerId"]] = message

    def _continue_as_new(self, db, instance_id: str, live: _Live, episode: core.Episode,
                         now: float, after: list) -> None:
        """Drop the old generation (history, timers, work) and queue the new start."""
        Store.drop_generation(db, instance_id)
        after.clear()
        live.execution = uuid.uuid4().hex
        live.state = OrchestrationState(instance_id, live.state.name, episode.continue_input,
                                        live.state.parent_instance_id)
        live.held, live.in_flight, live.completions_seen, live.timers = [], 0, 0, {}
        self._add_message(db, instance_id, live.execution, Message("start", text=episode.continue_input),
                          now, after)

    def _notify_parent(self, db, live: _Live, episode: core.Episode, now: float, after: list) -> None:
        assert live.parent is not None  # called for sub-orchestrations only
        parent_id, task_id, parent_execution = live.parent
        if episode.status == core.COMPLETED:
            event = h.sub_orchestration_completed(task_id, episode.output)
        else:
            reason = json.loads(episode.output) if episode.output else episode.status
            if episode.status == core.TERMINATED:
                reason = f"sub-orchestration '{live.state.instance_id}' was terminated: {reason}"
            event = h.sub_orchestration_failed(task_id, reason)
        self._add_message(db, parent_id, parent_execution, Message("event", event), now, after)

    def _add_message(self, db, instance_id: str, execution: str, message: Message,
                     visible_at: float, after: list) -> None:
        message.execution = execution
        message.row_id = Store.add_message(db, instance_id, execution, _message_json(message), visible_at)
        after.append(functools.partial(self._deliver, instance_id, message, visible_at))

    def _schedule_activity(self, db, instance_id: str, execution: str, call: core.ActivityCall,
                           now: float, after: list) -> None:
        if call.name not in self.registry.activities:
            known = ", ".join(sorted(self.registry.activities)) or "(none)"
            event = h.task_failed(call.task_id, f"activity '{call.name}' is not registered; known: {known}")
            self._add_message(db, instance_id, execution, Message("event", event), now, after)
            return
        row_id = Store.add_work(db, instance_id, execution, call.task_id, call.name, call.input, now)
        live = self._live.get(instance_id)
        if live is not None:
            live.in_flight += 1
        item = WorkItem(row_id, instance_id, execution, call.task_id, call.name, call.input, now)
        after.append(functools.partial(self._workers.submit, item))

    # ---- activities ------------------------------------------------------------------

    def _record_completions(self, batch: list[tuple[WorkItem, dict]]) -> None:
        """Record a batch of finished activities in one transaction, then deliver them."""
        if not self._started:
            return
        self.stats.activities_started = self._workers.started
        now = time.time()
        after: list = []
        with self._store.transaction() as db:
            for item, event in batch:
                if Store.delete_work(db, item.row_id):   # not terminated or purged meanwhile
                    self._add_message(db, item.instance_id, item.execution, Message("event", event), now, after)
                live = self._live.get(item.instance_id)
                if live is not None and live.execution == item.execution:
                    live.in_flight -= 1
        for step in after:
            step()
        if self.after_activities is not None:
            self.after_activities()


def _missing_orchestrator(name: str, known: list[str], context_json: str) -> str:
    raise RuntimeError(f"orchestrator '{name}' is not registered; known: {', '.join(known) or '(none)'}")
