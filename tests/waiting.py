"""The one way a test waits: ask, until the answer is right or a deadline passes.

    job = wait_until(lambda: app.job(job_id), lambda job: job["status"] in ENDED,
                     timeout=180, what=f"job {job_id} to end")

`probe()` is asked every `interval` seconds until `done(value)` holds; that value is
returned. At the deadline the test fails with `WaitTimeout`, whose message names what it
waited for and the LAST value the probe gave (or the last exception, see `ignoring`), so a
failure shows the state the system was stuck in, not just "timed out".

- `ignoring`: exception types that mean "not yet" (a server not listening yet, a blob not
  written yet). Any other exception from the probe fails the test at once.
- `context`: called only on failure; what it returns is added to the message (a host log).

`wait_until_async` is the same for a test running on an event loop: the probe may be a
coroutine function, and the pause between tries is an `asyncio.sleep`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


class WaitTimeout(AssertionError):
    """The awaited condition did not hold before the deadline."""


class _Tries:
    """The bookkeeping both waits share: the deadline and the last thing seen."""

    def __init__(self, what: str, timeout: float, context: Callable[[], object] | None):
        self.what, self.timeout, self.context = what, timeout, context
        self.deadline = time.monotonic() + timeout
        self.tries = 0
        self.last: Any = None
        self.error: BaseException | None = None

    def seen(self, value: Any) -> None:
        self.tries += 1
        self.last, self.error = value, None

    def failed(self, error: BaseException) -> None:
        self.tries += 1
        self.error = error

    def give_up(self) -> bool:
        return time.monotonic() >= self.deadline

    def timeout_error(self) -> WaitTimeout:
        if self.error is not None:
            last = f"the probe last raised {type(self.error).__name__}: {self.error}"
        else:
            last = f"the last value was {self.last!r}"
        message = f"gave up waiting for {self.what} after {self.timeout:g}s and {self.tries} tries; {last}"
        if self.context is not None:
            message += f"\n{self.context()}"
        return WaitTimeout(message)


def wait_until(probe: Callable[[], Any], done: Callable[[Any], object] = bool, *, timeout: float, what: str,
               interval: float = 0.1, ignoring: tuple[type[BaseException], ...] = (),
               context: Callable[[], object] | None = None) -> Any:
    """`probe()`'s first value for which `done(value)` holds; WaitTimeout with the last value at `timeout`."""
    tries = _Tries(what, timeout, context)
    while True:
        try:
            value = probe()
        except ignoring as error:  # only these mean "not yet"; anything else fails the test now
            tries.failed(error)
        else:
            tries.seen(value)
            if done(value):
                return value
        if tries.give_up():
            raise tries.timeout_error()
        time.sleep(min(interval, max(0.0, tries.deadline - time.monotonic())))


async def wait_until_async(probe: Callable[[], Any], done: Callable[[Any], object] = bool, *, timeout: float,
                           what: str, interval: float = 0.1, ignoring: tuple[type[BaseException], ...] = (),
                           context: Callable[[], object] | None = None) -> Any:
    """`wait_until` on an event loop: `probe()` may return an awaitable."""
    tries = _Tries(what, timeout, context)
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except ignoring as error:  # only these mean "not yet"; anything else fails the test now
            tries.failed(error)
        else:
            tries.seen(value)
            if done(value):
                return value
        if tries.give_up():
            raise tries.timeout_error()
        await asyncio.sleep(min(interval, max(0.0, tries.deadline - time.monotonic())))
