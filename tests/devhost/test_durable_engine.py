"""The durable engine end to end, in process: real SDK orchestrators, real SQLite task hub.

The orchestrators and activities below are an ordinary `df.DFApp`; the engine gets them
through `Registry.from_functions`, exactly as the devhost host does. Durability is tested
by killing a worker process with SIGKILL in the middle of a fan-out (this file is also
that worker: `python test_durable_engine.py crash-worker DB`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
import pytest

from devhost.durable import DurableEngine, InstanceExists, InstanceNotFound, InstanceNotRunning, Registry, UnknownOrchestrator
from devhost.durable import history as h
from devhost.durable.store import Store
from tests.waiting import wait_until, wait_until_async

app = df.DFApp()


# ---- activities ---------------------------------------------------------------------

@app.activity_trigger(input_name="value")
def double(value: int) -> int:
    return value * 2


ATTEMPTS: dict[str, int] = {}


@app.activity_trigger(input_name="request")
def flaky(request: dict) -> str:
    """Fails `fail_times` times per key, then succeeds."""
    key = request["key"]
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] <= request["fail_times"]:
        raise ValueError(f"attempt {ATTEMPTS[key]} of {key} failed")
    return f"{key} ok after {ATTEMPTS[key]}"


@app.activity_trigger(input_name="text")
async def shout(text: str) -> str:
    await asyncio.sleep(0.001)
    return text.upper()


class Probe:
    """Counts activities running at the same time."""
    lock = threading.Lock()
    running = 0
    peak = 0


@app.activity_trigger(input_name="ms")
def probe(ms: int) -> int:
    with Probe.lock:
        Probe.running += 1
        Probe.peak = max(Probe.peak, Probe.running)
    time.sleep(ms / 1000)
    with Probe.lock:
        Probe.running -= 1
    return ms


@app.activity_trigger(input_name="item")
def record(item: dict) -> int:
    """The side effect whose repetition the crash test counts: one line per run."""
    time.sleep(item["sleep"])
    with open(item["path"], "a") as effects:
        effects.write(f"{item['i']}\n")
    return item["i"]


# ---- orchestrators ------------------------------------------------------------------

@app.orchestration_trigger(context_name="context")
def fan_out(context):
    results = yield context.task_all([context.call_activity("double", i) for i in range(context.get_input())])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def retrying(context):
    request = context.get_input()
    try:
        value = yield context.call_activity_with_retry(
            "flaky", df.RetryOptions(10, request["attempts"]), request)
        return {"value": value}
    except Exception as error:
        return {"error": str(error)}


@app.orchestration_trigger(context_name="context")
def sleeper(context):
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input()))
    return "woke"


@app.orchestration_trigger(context_name="context")
def parent(context):
    sums = yield context.task_all([context.call_sub_orchestrator("fan_out", 3),
                                   context.call_sub_orchestrator("fan_out", 4, "child-four")])
    try:
        yield context.call_sub_orchestrator("failing", None)
    except Exception as error:
        return {"sums": sums, "child_error": str(error)}


@app.orchestration_trigger(context_name="context")
def flaky_child(context):
    result = yield context.call_activity("flaky", context.get_input())
    return result


@app.orchestration_trigger(context_name="context")
def retrying_parent(context):
    result = yield context.call_sub_orchestrator_with_retry(
        "flaky_child", df.RetryOptions(10, 3), {"key": "child", "fail_times": 2})
    return result


@app.orchestration_trigger(context_name="context")
def waits_for_child(context):
    try:
        yield context.call_sub_orchestrator("approval", None, "stuck-child")
    except Exception as error:
        return str(error)


@app.orchestration_trigger(context_name="context")
def failing(context):
    yield context.call_activity("double", 1)
    raise ValueError("no prompts given")


@app.orchestration_trigger(context_name="context")
def approval(context):
    context.set_custom_status({"stage": "waiting for approval"})
    decision = yield context.wait_for_external_event("Approval")
    return decision


@app.orchestration_trigger(context_name="context")
def approval_or_timeout(context):
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=context.get_input()))
    event = context.wait_for_external_event("Approval")
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return ["approved", event.result]
    return ["timed out"]


@app.orchestration_trigger(context_name="context")
def approve_then_finish(context):
    timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=0.2))
    approval = context.wait_for_external_event("Approval")
    winner = yield context.task_any([approval, timer])
    if winner == approval:
        timer.cancel()
    yield context.wait_for_external_event("Finish")
    return "approved" if winner == approval else "timed out"


@app.orchestration_trigger(context_name="context")
def counter(context):
    n = yield context.call_activity("double", context.get_input())
    if n < 8:
        context.continue_as_new(n)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def calls_missing(context):
    yield context.call_activity("generate_imgs", {"batch": 1})


@app.orchestration_trigger(context_name="context")
def uses_entity(context):
    yield context.call_entity(df.EntityId("counter", "jobs"), "add", 1)


@app.orchestration_trigger(context_name="context")
def shouting(context):
    words = yield context.task_all([context.call_activity("shout", w) for w in context.get_input()])
    return words


@app.orchestration_trigger(context_name="context")
def probing(context):
    yield context.task_all([context.call_activity("probe", 20) for _ in range(context.get_input())])
    return "done"


@app.orchestration_trigger(context_name="context")
def slow_fan(context):
    request = context.get_input()
    items = [{"i": i, "path": request["path"], "sleep": request["sleep"]} for i in range(request["n"])]
    done = yield context.task_all([context.call_activity("record", item) for item in items])
    return len(done)


REGISTRY = Registry.from_functions(app.get_functions())


def run(scenario, store=":memory:", registry=REGISTRY, **options):
    """Start an engine, run `scenario(engine)`, stop the engine; returns the scenario's result."""
    async def main():
        engine = DurableEngine(registry, str(store), **options)
        await engine.start()
        try:
            return await scenario(engine)
        finally:
            await engine.stop()
    return asyncio.run(main())


async def finish(engine, name, input_value=None, instance_id=None, timeout=20):
    instance_id = await engine.start_new(name, instance_id, json.dumps(input_value))
    status = await engine.wait_for(instance_id, timeout)
    assert status is not None, f"{name} did not finish in {timeout}s: {await engine.get_status(instance_id)}"
    return status


async def reaches(engine, instance_id, runtime_status, timeout=10):
    """Wait until the instance's status is `runtime_status`; returns that status."""
    return await wait_until_async(lambda: engine.get_status(instance_id),
                                  lambda status: (status or {}).get("runtimeStatus") == runtime_status,
                                  timeout=timeout, interval=0.01, what=f"instance {instance_id} to be {runtime_status}")


async def running(engine, instance_id, timeout=10):
    """Wait until the first episode ran (the instance is Running)."""
    return await reaches(engine, instance_id, "Running", timeout)


# ---- tests --------------------------------------------------------------------------

def test_registry_indexes_function_names_and_python_names():
    assert {"fan_out", "retrying", "parent"} <= set(REGISTRY.orchestrators)
    function, binding = REGISTRY.activities["double"]
    assert binding == "value" and function(4) == 8


@pytest.mark.parametrize("store", ["memory", "file"])
def test_fan_out_fan_in(tmp_path, store):
    path = ":memory:" if store == "memory" else tmp_path / "hub.sqlite"
    status = run(lambda engine: finish(engine, "fan_out", 50), path)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(2 * i for i in range(50))
    assert status["input"] == 50


def test_async_activities_run_on_the_loop():
    status = run(lambda engine: finish(engine, "shouting", ["a", "bc"]))
    assert status["output"] == ["A", "BC"]


def test_retry_that_succeeds_and_retry_that_exhausts():
    async def scenario(engine):
        ok = await finish(engine, "retrying", {"key": "ok", "fail_times": 2, "attempts": 3})
        bad = await finish(engine, "retrying", {"key": "bad", "fail_times": 9, "attempts": 3})
        return ok, bad

    ok, bad = run(scenario)
    assert ok["output"] == {"value": "ok ok after 3"}
    assert "attempt 3 of bad failed" in bad["output"]["error"]
    assert ATTEMPTS["bad"] == 3


def test_timer_fires_and_survives_a_restart(tmp_path):
    store = tmp_path / "hub.sqlite"

    async def start_and_leave(engine):
        return await engine.start_new("sleeper", "nap", "0.4")

    run(start_and_leave, store)   # stopped before the timer fires
    status = run(lambda engine: engine.wait_for("nap", 10), store)
    assert status["runtimeStatus"] == "Completed" and status["output"] == "woke"


def test_sub_orchestrations_return_results_and_failures():
    async def scenario(engine):
        status = await finish(engine, "parent")
        return status, await engine.get_status("child-four")

    status, child = run(scenario)
    assert status["output"]["sums"] == [6, 12]
    assert "no prompts given" in status["output"]["child_error"]
    assert child["runtimeStatus"] == "Completed" and child["output"] == 12


def test_sub_orchestration_with_retry_starts_a_new_child_per_attempt():
    async def scenario(engine):
        status = await finish(engine, "retrying_parent", instance_id="rp")
        children, _ = await engine.list_instances(prefix="rp:")
        return status, children

    status, children = run(scenario)
    assert status["output"] == "child ok after 3"
    assert [c["runtimeStatus"] for c in children] == ["Failed", "Failed", "Completed"]
    assert "attempt 1 of child failed" in children[0]["output"]


def test_terminated_child_fails_its_parent_task():
    async def scenario(engine):
        parent_id = await engine.start_new("waits_for_child", None, None)
        await running(engine, "stuck-child")
        await engine.terminate("stuck-child", "operator stopped it")
        return await engine.wait_for(parent_id, 10)

    status = run(scenario)
    assert status["runtimeStatus"] == "Completed"
    assert "'stuck-child' was terminated: operator stopped it" in status["output"]


def test_stop_leaves_no_engine_threads(tmp_path):
    before = set(threading.enumerate())
    run(lambda engine: finish(engine, "shouting", ["x"]), tmp_path / "hub.sqlite")
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def test_external_events_raised_before_and_after_the_wait():
    async def scenario(engine):
        early = await engine.start_new("approval", "early", None)
        await engine.raise_event(early, "Approval", '"yes"')   # may land before the first episode
        late = await engine.start_new("approval", "late", None)
        await running(engine, late)
        assert (await engine.get_status(late))["customStatus"] == {"stage": "waiting for approval"}
        await engine.raise_event(late, "Approval", '{"by": "ana"}')
        return await engine.wait_for(early, 10), await engine.wait_for(late, 10)

    early, late = run(scenario)
    assert early["output"] == "yes"
    assert late["output"] == {"by": "ana"}


def test_when_any_with_timeout_both_outcomes():
    async def scenario(engine):
        approved = await engine.start_new("approval_or_timeout", None, "30")
        await engine.raise_event(approved, "Approval", "true")
        timed_out = await engine.start_new("approval_or_timeout", None, "0.2")
        return await engine.wait_for(approved, 10), await engine.wait_for(timed_out, 10)

    approved, timed_out = run(scenario)
    assert approved["output"] == ["approved", True]
    assert timed_out["output"] == ["timed out"]


def test_cancelled_timer_does_not_fire_later():
    async def scenario(engine):
        instance_id = await engine.start_new("approve_then_finish", None, None)
        await running(engine, instance_id)
        await engine.raise_event(instance_id, "Approval", "true")
        # The engine fires timers in the order they fall due: once a timer due after the
        # cancelled one (0.2 s) has fired, the cancelled one would have fired too.
        assert (await finish(engine, "sleeper", 0.4))["output"] == "woke"
        await engine.raise_event(instance_id, "Finish", None)
        await engine.wait_for(instance_id, 10)
        return await engine.get_status(instance_id, show_history=True)

    status = run(scenario)
    assert status["output"] == "approved"
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert "TimerCreated" in kinds and "TimerFired" not in kinds


def test_continue_as_new_restarts_with_new_input():
    status = run(lambda engine: finish(engine, "counter", 1))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == 8       # 1 -> 2 -> 4 -> 8 over three generations
    assert status["input"] == 4        # the last generation's input


def test_terminate_a_waiting_instance():
    async def scenario(engine):
        instance_id = await engine.start_new("approval", None, None)
        await engine.terminate(instance_id, "job cancelled by user")
        status = await engine.wait_for(instance_id, 10)
        with pytest.raises(InstanceNotRunning) as refused:
            await engine.raise_event(instance_id, "Approval", "true")
        return status, refused.value

    status, refused = run(scenario)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "job cancelled by user"
    assert refused.status == "Terminated"


def test_suspended_instance_processes_nothing_until_resumed():
    async def scenario(engine):
        instance_id = await engine.start_new("approval", None, None)
        await running(engine, instance_id)
        await engine.suspend(instance_id, "pause")
        await engine.raise_event(instance_id, "Approval", '"while suspended"')
        suspended = await reaches(engine, instance_id, "Suspended")
        assert suspended["customStatus"] == {"stage": "waiting for approval"}
        await engine.resume(instance_id, "go on")
        await engine.wait_for(instance_id, 10)
        return await engine.get_status(instance_id, show_history=True)

    status = run(scenario)
    assert status["output"] == "while suspended"
    # Nothing was processed while suspended: the event reached the orchestration only after
    # the resume, however long it was held (no timing involved).
    kinds = [e["EventType"] for e in status["historyEvents"]]
    assert kinds.index("ExecutionSuspended") < kinds.index("ExecutionResumed") < kinds.index("EventRaised")


def test_orchestrator_that_raises_fails_with_its_error():
    status = run(lambda engine: finish(engine, "failing"))
    assert status["runtimeStatus"] == "Failed"
    assert "no prompts given" in status["output"]


def test_missing_activity_fails_clearly_instead_of_hanging():
    status = run(lambda engine: finish(engine, "calls_missing", timeout=10))
    assert status["runtimeStatus"] == "Failed"
    assert "activity 'generate_imgs' is not registered; known: " in status["output"]
    assert "double" in status["output"]


def test_entities_fail_with_clear_error():
    status = run(lambda engine: finish(engine, "uses_entity"))
    assert status["runtimeStatus"] == "Failed"
    assert "entities are not supported by devhost" in status["output"]


def test_start_new_refuses_unknown_names_and_running_ids_and_restarts():
    async def scenario(engine):
        with pytest.raises(UnknownOrchestrator) as unknown:
            await engine.start_new("fan_outt", None, None)
        await engine.start_new("approval", "job-1", None)
        with pytest.raises(InstanceExists) as exists:
            await engine.start_new("approval", "job-1", None)
        with pytest.raises(InstanceNotFound):
            await engine.raise_event("job-404", "Approval", None)
        done = await finish(engine, "fan_out", 3, instance_id="fan-1")
        same = await engine.restart("fan-1", restart_with_new_instance_id=False)
        new = await engine.restart("fan-1")
        return unknown.value, exists.value, done, same, await engine.wait_for(new, 10)

    unknown, exists, done, same, restarted = run(scenario)
    assert unknown.name == "fan_outt" and "fan_out" in str(unknown)
    assert exists.instance_id == "job-1" and exists.status in ("Pending", "Running")
    assert same == "fan-1"
    assert restarted["instanceId"] != "fan-1" and restarted["output"] == done["output"] == 6


def test_list_filters_paging_history_and_purge():
    async def scenario(engine):
        for i in range(5):
            await finish(engine, "fan_out", 1, instance_id=f"batch-{i}")
        await engine.start_new("approval", "waiting-1", None)
        middle = datetime.now(timezone.utc)
        await engine.start_new("approval", "waiting-2", None)

        everything, _ = await engine.list_instances()
        completed, _ = await engine.list_instances(statuses=["Completed"])
        running, _ = await engine.list_instances(statuses=["Running", "Pending"], created_to=middle)
        pages, token = [], None
        while True:
            page, token = await engine.list_instances(prefix="batch-", top=2, continuation=token)
            pages.append([s["instanceId"] for s in page])
            if token is None:
                break
        with_history = await engine.get_status("batch-0", show_history=True, show_history_output=True)
        purged_one = await engine.purge("batch-0")
        purged_rest = await engine.purge_by(statuses=["Completed"])
        return everything, completed, running, pages, with_history, purged_one, purged_rest

    everything, completed, running, pages, with_history, purged_one, purged_rest = run(scenario)
    assert len(everything) == 7 and len(completed) == 5
    assert [s["instanceId"] for s in running] == ["waiting-1"]
    assert pages == [["batch-0", "batch-1"], ["batch-2", "batch-3"], ["batch-4"]]
    kinds = [e["EventType"] for e in with_history["historyEvents"]]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionCompleted"
    assert "TaskCompleted" in kinds
    assert (purged_one, purged_rest) == (1, 4)


def test_max_concurrent_activities_is_honoured():
    Probe.peak = 0
    status = run(lambda engine: finish(engine, "probing", 12), max_activities=3)
    assert status["output"] == "done"
    assert 1 < Probe.peak <= 3


def test_completions_are_batched_into_few_episodes():
    calls = []
    handle = REGISTRY.orchestrators["fan_out"]

    def counting(context_json: str) -> str:
        calls.append(1)
        return handle(context_json)

    registry = Registry({**REGISTRY.orchestrators, "fan_out": counting}, REGISTRY.activities)
    status = run(lambda engine: finish(engine, "fan_out", 200), registry=registry)
    assert status["output"] == sum(2 * i for i in range(200))
    assert len(calls) < 20, f"{len(calls)} episodes for a 200-way fan-out"


# ---- durability: SIGKILL in the middle of a fan-out ---------------------------------

FAN = 60


def crash_worker(store: str, effects: str) -> None:
    """Start the fan-out and run until killed."""
    async def main():
        engine = DurableEngine(REGISTRY, store, max_activities=4)
        await engine.start()
        await engine.start_new("slow_fan", "crash-1", json.dumps({"n": FAN, "path": effects, "sleep": 0.02}))
        await asyncio.sleep(60)
    asyncio.run(main())


def test_killed_host_resumes_and_does_not_redo_completed_work(tmp_path):
    store, effects = tmp_path / "hub.sqlite", tmp_path / "effects.txt"
    effects.touch()
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    worker = subprocess.Popen([sys.executable, __file__, "crash-worker", str(store), str(effects)],
                              env={**os.environ, "PYTHONPATH": repo_root},  # this checkout's devhost and tests
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def progress() -> int:
            assert worker.poll() is None, worker.stderr.read().decode()  # a dead worker fails at once
            return len(effects.read_text().splitlines())

        wait_until(progress, lambda done: done >= FAN // 4, timeout=30, interval=0.01,
                   what=f"the worker to record {FAN // 4} activities")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    # completed work = completions in the history or waiting in the inbox for an episode
    before = Store(str(store))
    events = before.history("crash-1") + [json.loads(row["message"])["event"] for row in before.inbox()]
    recorded = {json.loads(e["Result"]) for e in events
                if e and e["EventType"] == h.EventType.TASK_COMPLETED}
    before.close()
    assert 0 < len(recorded) < FAN, "kill the worker mid fan-out"

    status = run(lambda engine: engine.wait_for("crash-1", 30), store, max_activities=4)
    assert status["runtimeStatus"] == "Completed" and status["output"] == FAN
    runs = [int(line) for line in effects.read_text().splitlines()]
    assert set(runs) == set(range(FAN))
    assert all(runs.count(i) == 1 for i in recorded), "completed work was redone"
    assert len(runs) - FAN <= 4, "more re-runs than activities in flight"


if __name__ == "__main__" and sys.argv[1:2] == ["crash-worker"]:
    crash_worker(sys.argv[2], sys.argv[3])
