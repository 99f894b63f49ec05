"""In-process notice that a job's manifest is written, so a request waiting for the job
answers at once instead of at its next poll.

`write_manifest` calls `manifest_written(job_id)` from its activity thread; the sync
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

_lock = threading.Lock()
_written: OrderedDict[str, None] = OrderedDict()
_waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}


def manifest_written(job_id: str) -> None:
    """Wake every request waiting for `job_id` (safe from any thread)."""
    with _lock:
        _written[job_id] = None
        _written.move_to_end(job_id)
        while len(_written) > REMEMBERED:
            _written.popitem(last=False)
        waiters = _waiters.pop(job_id, [])
    for loop, future in waiters:
        loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(True)


async def wait_for_manifest(job_id: str, timeout: float) -> bool:
    """True as soon as this process has written the job's manifest (at once if it already
    has), False when `timeout` seconds pass first."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    with _lock:
        if job_id in _written:
            return True
        _waiters.setdefault(job_id, []).append((loop, future))
    try:
        return await asyncio.wait_for(future, timeout)
    except asyncio.TimeoutError:
        return False
    finally:
        with _lock:
            waiters = _waiters.get(job_id, [])
            if (loop, future) in waiters:
                waiters.remove((loop, future))
                if not waiters:
                    del _waiters[job_id]
