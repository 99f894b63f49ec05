"""The pure episode core against the real Durable SDK: histories in, actions and ids out.

Each test defines its orchestrator inline with the SDK's decorators, feeds `run_episode`
the messages an engine would, and checks what the core decided. Task ids are the thing
to get right: an id off by one makes the SDK wait forever without an error.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import azure.durable_functions as df
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.durable import core
from devhost.durable import history as h
from devhost.durable.core import Message, OrchestrationState, retry_delay, run_episode

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def orchestrator(fn):
    """The SDK's wrapped orchestrator (context JSON -> state JSON) for a generator function."""
    app = df.DFApp()
    app.orchestration_trigger(context_name="context")(fn)
    return app.get_functions()[0].get_user_function()


def start(handle, input_json="null", name="orch"):
    state = OrchestrationState("inst-1", name)
    episode = run_episode(handle, state, [Message("start", text=input_json)], T0)
    return state, episode


def step(handle, state, *events, at=T0 + timedelta(seconds=1)):
    return run_episode(handle, state, [Message("event", e) for e in events], at)


def test_first_episode_schedules_activity_with_id_zero_and_history_shape():
    def orch(context):
        result = yield context.call_activity("say_hi", context.get_input())
        return result

    handle = orchestrator(orch)
    state, episode = start(handle, '"Tokyo"')

    assert episode.status == core.RUNNING
    assert [(a.task_id, a.name, a.input) for a in episode.activities] == [(0, "say_hi", '"Tokyo"')]
    kinds = [e["EventType"] for e in state.history]
    assert kinds == [h.EventType.ORCHESTRATOR_STARTED, h.EventType.EXECUTION_STARTED,
                     h.EventType.TASK_SCHEDULED, h.EventType.ORCHESTRATOR_COMPLETED]
    assert all(e["IsPlayed"] for e in state.history)

    done = step(handle, state, h.task_completed(0, '"hi Tokyo"'))
    assert done.status == core.COMPLETED
    assert json.loads(done.output) == "hi Tokyo"
    assert done.activities == []


def test_fan_out_ids_follow_list_order_and_results_come_back_in_order():
    def orch(context):
        results = yield context.task_all([context.call_activity("double", i) for i in range(5)])
        return results

    handle = orchestrator(orch)
    state, episode = start(handle)
    assert [(a.task_id, a.input) for a in episode.activities] == [(i, str(i)) for i in range(5)]

    # completions arrive out of order, in two waves
    partial = step(handle, state, h.task_completed(3, "6"), h.task_completed(0, "0"))
    assert partial.status == core.RUNNING and partial.activities == []
    done = step(handle, state, *[h.task_completed(i, str(2 * i)) for i in (4, 1, 2)])
    assert json.loads(done.output) == [0, 2, 4, 6, 8]


def test_retry_that_succeeds_uses_timer_then_next_attempt_ids():
    def orch(context):
        value = yield context.call_activity_with_retry("flaky", df.RetryOptions(1000, 3), "x")
        return value

    handle = orchestrator(orch)
    state, first = start(handle)
    assert [a.task_id for a in first.activities] == [0]

    failed = step(handle, state, h.task_failed(0, "boom"))
    assert failed.activities == []
    [timer] = failed.timers
    assert timer.message.event["TimerId"] == 1
    fire_at = h.parse_time(timer.fire_at)
    assert fire_at - (T0 + timedelta(seconds=1)) == timedelta(milliseconds=1000)

    retried = step(handle, state, timer.message.event)
    assert [(a.task_id, a.name) for a in retried.activities] == [(2, "flaky")]

    done = step(handle, state, h.task_completed(2, '"ok"'))
    assert done.status == core.COMPLETED and json.loads(done.output) == "ok"


def test_retry_exhausted_reaches_orchestrator_only_after_one_more_timer():
    def orch(context):
        try:
            yield context.call_activity_with_retry("flaky", df.RetryOptions(5, 2), None)
        except Exception as error:
            return f"gave up: {error}"

    handle = orchestrator(orch)
    state, _ = start(handle)
    t1 = step(handle, state, h.task_failed(0, "first failure")).timers[0].message.event
    assert [a.task_id for a in step(handle, state, t1).activities] == [2]
    last = step(handle, state, h.task_failed(2, "second failure"))
    assert last.status == core.RUNNING            # the error waits for the extra timer
    t3 = last.timers[0].message.event
    assert t3["TimerId"] == 3
    done = step(handle, state, t3)
    assert done.status == core.COMPLETED
    assert json.loads(done.output).startswith("gave up: second failure")


def test_retry_ids_interleave_with_later_actions():
    def orch(context):
        opts = df.RetryOptions(10, 3)
        pair = yield context.task_all([context.call_activity_with_retry("a", opts),
                                       context.call_activity_with_retry("b", opts)])
        after = yield context.call_activity("c")
        return [pair, after]

    handle = orchestrator(orch)
    state, first = start(handle)
    assert [a.task_id for a in first.activities] == [0, 1]
    failed = step(handle, state, h.task_completed(1, '"B"'), h.task_failed(0, "a broke"))
    assert failed.timers[0].message.event["TimerId"] == 2
    assert [a.task_id for a in step(handle, state, failed.timers[0].message.event).activities] == [3]
    then = step(handle, state, h.task_completed(3, '"A"'))
    assert [(a.task_id, a.name) for a in then.activities] == [(4, "c")]
    done = step(handle, state, h.task_completed(4, '"C"'))
    assert json.loads(done.output) == [["A", "B"], "C"]


class RetryWithTimeout(df.RetryOptions):
    """The SDK's RetryOptions cannot say retryTimeoutInMilliseconds; the action JSON can."""

    def to_json(self):
        return {**super().to_json(), "retryTimeoutInMilliseconds": 500}


def test_retry_timeout_fails_remaining_attempts_without_running_them():
    def orch(context):
        try:
            yield context.call_activity_with_retry("flaky", RetryWithTimeout(10, 3), None)
        except Exception as error:
            return str(error)

    handle = orchestrator(orch)
    state, first = start(handle)
    later = T0 + timedelta(seconds=5)
    failed = step(handle, state, h.task_failed(0, "slow failure"), at=later)
    assert failed.timers[0].fire_at == h.format_time(later)          # no backoff once expired
    attempt = step(handle, state, failed.timers[0].message.event, at=later)
    assert attempt.activities == []                                   # not run again...
    failure = attempt.timers[0].message.event                          # ...failed at once
    assert failure["TaskScheduledId"] == 2 and "retry timeout of 500 ms" in failure["Reason"]


def test_retry_delay_uses_backoff_and_cap():
    options = {"firstRetryIntervalInMilliseconds": 100, "backoffCoefficient": 2,
               "maxRetryIntervalInMilliseconds": 350}
    assert [retry_delay(options, n) for n in (1, 2, 3, 4)] == [
        timedelta(milliseconds=100), timedelta(milliseconds=200),
        timedelta(milliseconds=350), timedelta(milliseconds=350)]


def test_timer_uses_orchestrator_started_clock_and_fires_by_id():
    def orch(context):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
        return context.current_utc_datetime.isoformat()

    handle = orchestrator(orch)
    state, episode = start(handle)
    [timer] = episode.timers
    assert timer.fire_at == h.format_time(T0 + timedelta(minutes=5))
    done = step(handle, state, timer.message.event, at=T0 + timedelta(minutes=5, seconds=1))
    assert json.loads(done.output) == (T0 + timedelta(minutes=5, seconds=1)).isoformat()


def test_event_raised_before_the_wait_is_kept():
    def orch(context):
        yield context.call_activity("prepare")
        approval = yield context.wait_for_external_event("Approval")
        return approval

    handle = orchestrator(orch)
    state, _ = start(handle)
    early = step(handle, state, h.event_raised("Approval", '{"ok": true}'))
    assert early.status == core.RUNNING
    done = step(handle, state, h.task_completed(0, "null"))
    assert json.loads(done.output) == {"ok": True}


def test_cancelled_timer_is_reported_so_it_never_wakes_the_instance():
    def orch(context):
        timer = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
        approval = context.wait_for_external_event("Approval")
        winner = yield context.task_any([approval, timer])
        if winner == approval:
            timer.cancel()
        yield context.call_activity("publish")

    handle = orchestrator(orch)
    state, first = start(handle)
    assert [t.message.event["TimerId"] for t in first.timers] == [0]
    approved = step(handle, state, h.event_raised("Approval", "true"))
    assert approved.cancelled_timers == [0]
    assert [a.task_id for a in approved.activities] == [1]
    assert step(handle, state, h.event_raised("Other", "1")).cancelled_timers == []   # reported once


def test_sub_orchestration_gets_derived_instance_id():
    def orch(context):
        child = yield context.call_sub_orchestrator("child", {"n": 1})
        return child

    handle = orchestrator(orch)
    state, episode = start(handle)
    [call] = episode.sub_orchestrations
    assert (call.task_id, call.name, call.instance_id, json.loads(call.input)) == (0, "child", "inst-1:0", {"n": 1})
    done = step(handle, state, h.sub_orchestration_completed(0, '"child done"'))
    assert json.loads(done.output) == "child done"


def test_orchestrator_error_fails_with_its_text():
    def orch(context):
        yield context.call_activity("prepare")
        raise ValueError("prompt list is empty")

    handle = orchestrator(orch)
    state, _ = start(handle)
    failed = step(handle, state, h.task_completed(0, "null"))
    assert failed.status == core.FAILED
    assert "prompt list is empty" in json.loads(failed.output)
    assert state.history[-1]["EventType"] == h.EventType.EXECUTION_FAILED


def test_entities_fail_the_instance_clearly():
    def orch(context):
        yield context.call_entity(df.EntityId("counter", "k"), "add", 1)

    state, episode = start(orchestrator(orch))
    assert episode.status == core.FAILED
    assert "entities are not supported by devhost" in json.loads(episode.output)


def test_continue_as_new_returns_next_input():
    def orch(context):
        n = context.get_input()
        context.continue_as_new(n + 1)
        return None

    state, episode = start(orchestrator(orch), "4")
    assert episode.status == core.CONTINUED_AS_NEW
    assert episode.continue_input == "5"


def test_suspended_instance_holds_events_until_resumed():
    def orch(context):
        value = yield context.call_activity("a")
        return value

    handle = orchestrator(orch)
    state, _ = start(handle)
    paused = run_episode(handle, state, [Message("suspend", text="maintenance")], T0)
    assert paused.status == core.SUSPENDED
    completion = Message("event", h.task_completed(0, '"A"'))
    held = run_episode(handle, state, [completion], T0)
    assert held.status == core.SUSPENDED and held.kept == [completion] and not held.replayed
    resumed = run_episode(handle, state, held.kept + [Message("resume", text="done")], T0)
    assert resumed.status == core.COMPLETED and json.loads(resumed.output) == "A"


def test_custom_status_is_reported():
    def orch(context):
        context.set_custom_status({"stage": "moderating"})
        yield context.call_activity("a")

    _, episode = start(orchestrator(orch))
    assert json.loads(episode.custom_status) == {"stage": "moderating"}


# ---- task ids under any interleaving ------------------------------------------------

def plan_orchestrator(context):
    """Runs the plan step by step: each step a task_all of activities, retried activities,
    retried sub-orchestrations, timers and external events; a step that fails records
    "error" and the plan goes on."""
    results = []
    for step in context.get_input():
        tasks = []
        for item in step:
            if item["kind"] == "act":
                tasks.append(context.call_activity("work", item))
            elif item["kind"] == "retry":
                tasks.append(context.call_activity_with_retry("work", df.RetryOptions(1, item["attempts"]), item))
            elif item["kind"] == "sub":
                tasks.append(context.call_sub_orchestrator_with_retry(
                    "child", df.RetryOptions(1, item["attempts"]), item))
            elif item["kind"] == "event":
                tasks.append(context.wait_for_external_event(f"event-{item['id']}"))
            else:
                tasks.append(context.create_timer(context.current_utc_datetime + timedelta(seconds=1)))
        try:
            results.append((yield context.task_all(tasks)))
        except Exception:
            results.append("error")
    return results


PLAN_HANDLE = orchestrator(plan_orchestrator)

items = st.one_of(
    st.fixed_dictionaries({"kind": st.just("act"), "fail": st.integers(0, 1)}),
    st.fixed_dictionaries({"kind": st.just("retry"), "fail": st.integers(0, 3), "attempts": st.integers(1, 3)}),
    st.fixed_dictionaries({"kind": st.just("sub"), "fail": st.integers(0, 2), "attempts": st.integers(1, 2)}),
    st.fixed_dictionaries({"kind": st.just("event")}),
    st.fixed_dictionaries({"kind": st.just("timer")}),
)
plans = st.lists(st.lists(items, min_size=1, max_size=4), min_size=1, max_size=3)


def expected_result(plan: list[list[dict]]) -> list:
    out = []
    for step in plan:
        failed = any(i["kind"] == "act" and i["fail"] or i["kind"] in ("retry", "sub") and i["fail"] >= i["attempts"]
                     for i in step)
        out.append("error" if failed else [i.get("id") for i in step])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, rnd=st.randoms(use_true_random=False))
def test_any_plan_completes_under_any_delivery_order(plan, rnd):
    """Completions, failures, timers and events (some raised before their wait) delivered
    in random order and random batches: an id off by one would leave the orchestration
    waiting with nothing left to deliver, or hand a result to the wrong task."""
    for n, item in enumerate(i for step in plan for i in step):
        if item["kind"] != "timer":
            item["id"] = n
    attempts: dict[int, int] = {}
    waiting: list[dict] = []

    def absorb(episode):
        for call in episode.activities:
            item = json.loads(call.input)
            attempts[item["id"]] = attempts.get(item["id"], 0) + 1
            if attempts[item["id"]] <= item["fail"]:
                waiting.append(h.task_failed(call.task_id, f"item {item['id']} failed"))
            else:
                waiting.append(h.task_completed(call.task_id, json.dumps(item["id"])))
        for call in episode.sub_orchestrations:
            item = json.loads(call.input)
            attempts[item["id"]] = attempts.get(item["id"], 0) + 1
            if attempts[item["id"]] <= item["fail"]:
                waiting.append(h.sub_orchestration_failed(call.task_id, f"child {item['id']} failed"))
            else:
                waiting.append(h.sub_orchestration_completed(call.task_id, json.dumps(item["id"])))
        waiting.extend(timer.message.event for timer in episode.timers)

    waiting.extend(h.event_raised(f"event-{i['id']}", json.dumps(i["id"]))
                   for step in plan for i in step if i["kind"] == "event")
    state, episode = start(PLAN_HANDLE, json.dumps(plan))
    absorb(episode)
    while episode.status == core.RUNNING:
        assert waiting, f"the orchestration waits but nothing is left to deliver: {state.history[-3:]}"
        batch = rnd.sample(waiting, rnd.randint(1, len(waiting)))
        for event in batch:
            waiting.remove(event)
        episode = step(PLAN_HANDLE, state, *batch)
        absorb(episode)
    assert episode.status == core.COMPLETED, episode.output
    assert json.loads(episode.output) == expected_result(plan)
