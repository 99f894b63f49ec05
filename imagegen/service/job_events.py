"""In-process notice that a job's manifest is written, so a request waiting for the job
answers at once instead of at its next poll.

`write_manifest` calls `JobEvents.manifest_written(job_id)` on its process's `Services.job_events` from its activity thread; the sync
Foundry route awaits `wait_for_manifest(job_id, timeout)` on the host's event loop. It only
sees manifests written by this process: where the orchestration's activities run on
another replica, the waiter times out and its caller polls as before.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict

# Jobs whose manifest was written lately, so a waiter that arrives after the notice still
# returns at once; bounded, oldest forgotten first.
REMEMBERED = 1024

class JobEvents:
    """The notices of one process (one is kept in its `Services`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: OrderedDict[str, None] = OrderedDict()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}

    def manifest_written(self, job_id: str) -> None:
        """Wake every request waiting for `job_id` (safe from any thread)."""
        with self._lock:
            self._written[job_id] = None
            self._written.move_to_end(job_id)
            while len(self._written) > REMEMBERED:
                self._written.popitem(last=False)
            waiters = self._waiters.pop(job_id, [])
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait_for_manifest(self, job_id: str, timeout: float) -> bool:
        """True as soon as this process has written the job's manifest (at once if it already
        has), False when `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if job_id in self._written:
                return True
            self._waiters.setdefault(job_id, []).append((loop, future))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id, [])
                if (loop, future) in waiters:
                    waiters.remove((loop, future))
                    if not waiters:
                        del self._waiters[job_id]


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(True)
