"""The activity worker pool: `size` threads running activities, results handed back in batches.

Each thread takes a `WorkItem` from a queue, calls the user function (sync functions in the
thread; async functions on the engine's event loop, with the thread holding the slot
until they finish, so `size` bounds both kinds together), and queues the result event.
The loop is woken once per batch of results, not once per activity: at a thousand
activities a second the wake-ups, not the activities, would be the cost.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
from collections import deque
from typing import Callable

from devhost.durable import history as h
from devhost.durable.registry import Registry, decode_activity_input, encode_activity_output, failure_reason
from devhost.durable.store import WorkItem


class ActivityWorkers:
    def __init__(self, registry: Registry, size: int, loop: asyncio.AbstractEventLoop,
                 on_done: Callable[[list[tuple[WorkItem, dict]]], None], start_delays: deque):
        self.registry = registry
        self.size = size
        self.started = 0                      # activities started (for stats)
        self._loop = loop
        self._on_done = on_done
        self._start_delays = start_delays
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: list[tuple[WorkItem, dict]] = []
        self._stopping = False
        self._async_tasks: set[asyncio.Task] = set()
        self._threads = [threading.Thread(target=self._work, name=f"devhost-activity-{i}", daemon=True)
                         for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, item: WorkItem) -> None:
        self._queue.put(item)

    async def stop(self) -> None:
        """Run nothing new, cancel async activities, wait for the threads to finish."""
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        for task in list(self._async_tasks):
            task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, self._join)

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()

    # ---- in the worker threads -----------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._stopping:
                return
            with self._lock:
                self.started += 1
            self._start_delays.append(time.time() - item.scheduled_at)
            event = self._call(item)
            if self._stopping:      # the loop may be gone; the item runs again next start
                return
            with self._lock:
                self._done.append((item, event))
                first = len(self._done) == 1
            if first:
                self._loop.call_soon_threadsafe(self._hand_back)

    def _call(self, item: WorkItem) -> dict:
        entry = self.registry.activities.get(item.name)
        try:
            if entry is None:
                known = ", ".join(sorted(self.registry.activities)) or "(none)"
                raise LookupError(f"activity '{item.name}' is not registered; known: {known}")
            function, binding = entry
            value = decode_activity_input(item.input)
            if inspect.iscoroutinefunction(function):
                result = asyncio.run_coroutine_threadsafe(
                    self._on_loop(function(**{binding: value})), self._loop).result()
            else:
                result = function(**{binding: value})
            return h.task_completed(item.task_id, encode_activity_output(result))
        except Exception as exc:
            return h.task_failed(item.task_id, *failure_reason(item.name, exc))

    # ---- on the loop -----------------------------------------------------------------

    async def _on_loop(self, coroutine):
        task = asyncio.current_task()
        assert task is not None  # run_coroutine_threadsafe runs it in a task
        self._async_tasks.add(task)
        try:
            return await coroutine
        finally:
            self._async_tasks.discard(task)

    def _hand_back(self) -> None:
        with self._lock:
            batch, self._done = self._done, []
        if batch and not self._stopping:
            self._on_done(batch)
