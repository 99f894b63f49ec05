"""The `context` devhost hands a function: what Azure's own worker gives it."""

import threading

from devhost.invoke import InvocationContext


def test_thread_local_storage_holds_values_for_this_invocation_only():
    first = InvocationContext("render", "/app")
    second = InvocationContext("render", "/app")

    # 1. A function can keep values there, as on Azure (e.g. a tracing span).
    first.thread_local_storage.trace = "first"

    # 2. Another invocation does not see them, nor does another thread of the same one.
    assert first.thread_local_storage.trace == "first"
    assert not hasattr(second.thread_local_storage, "trace")
    seen_elsewhere = []
    worker = threading.Thread(
        target=lambda: seen_elsewhere.append(hasattr(first.thread_local_storage, "trace")))
    worker.start()
    worker.join()
    assert seen_elsewhere == [False]
