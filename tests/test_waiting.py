"""tests/waiting.py: the wait every test uses gives back what it waited for, or fails with what it saw last."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from tests.waiting import WaitTimeout, wait_until, wait_until_async


def test_returns_the_first_value_that_is_done():
    counter = itertools.count()
    assert wait_until(lambda: next(counter), lambda n: n >= 3, timeout=5, interval=0, what="three") == 3
    assert wait_until(lambda: "ready", timeout=5, what="a truthy value") == "ready"


def test_fails_with_what_it_waited_for_and_the_last_value():
    states = iter(["queued", "running", "running"])
    with pytest.raises(WaitTimeout) as failed:
        wait_until(lambda: next(states, "running"), lambda s: s == "done", timeout=0.2, interval=0.01,
                   what="the job to finish", context=lambda: "host log tail")
    message = str(failed.value)
    assert message.startswith("gave up waiting for the job to finish after 0.2s and ")
    assert "the last value was 'running'" in message
    assert message.endswith("\nhost log tail")
    assert isinstance(failed.value, AssertionError)  # pytest reports it as a failed check


def test_ignored_exceptions_mean_not_yet_and_the_last_one_is_reported():
    attempts = itertools.count(1)

    def not_listening():
        raise ConnectionError(f"refused (attempt {next(attempts)})")

    with pytest.raises(WaitTimeout, match=r"the probe last raised ConnectionError: refused \(attempt \d+\)"):
        wait_until(not_listening, timeout=0.1, interval=0.01, what="a server", ignoring=(ConnectionError,))

    answers = iter([ConnectionError("not yet"), "up"])

    def starting():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(starting, timeout=5, interval=0, what="a server", ignoring=(ConnectionError,)) == "up"


def test_other_exceptions_fail_at_once():
    asked = []

    def broken():
        asked.append(1)
        raise KeyError("status")

    with pytest.raises(KeyError):
        wait_until(broken, timeout=30, what="a status")
    assert asked == [1]


def test_the_probe_is_asked_once_more_at_the_deadline():
    asked = []
    with pytest.raises(WaitTimeout, match="and 2 tries; the last value was 0"):
        wait_until(lambda: asked.append(1) or 0, timeout=0.05, interval=10, what="never")


def test_async_probes_are_awaited():
    async def scenario():
        counter = itertools.count()

        async def probe():
            await asyncio.sleep(0)
            return next(counter)

        found = await wait_until_async(probe, lambda n: n == 2, timeout=5, interval=0, what="two")
        with pytest.raises(WaitTimeout, match="the last value was 'idle'"):
            await wait_until_async(lambda: "idle", lambda s: s == "busy", timeout=0.05, interval=0.01, what="busy")
        return found

    assert asyncio.run(scenario()) == 2
