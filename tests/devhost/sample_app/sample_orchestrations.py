"""Orchestrators and activities of the devhost test app, one per durable feature under test."""

import time
from datetime import timedelta

import azure.durable_functions as df
from effects import count_attempt, record_once

bp = df.Blueprint()


# -- activities --------------------------------------------------------------------------

@bp.activity_trigger(input_name="item")
def record_effect(item: dict) -> str:
    """Sleep a little (so a test can kill the host mid fan-out), then record the key once."""
    time.sleep(item.get("delay", 0))
    record_once(item["run"], item["key"])
    return item["key"]


@bp.activity_trigger(input_name="item")
def flaky(item: dict) -> str:
    attempt = count_attempt(f"flaky-{item['key']}")
    if attempt <= item["fail_times"]:
        raise RuntimeError(f"flaky failed on attempt {attempt} on purpose")
    return f"succeeded on attempt {attempt}"


@bp.activity_trigger(input_name="number")
def double(number: int) -> int:
    return number * 2


# -- orchestrators -----------------------------------------------------------------------

@bp.orchestration_trigger(context_name="context")
def fan_out_fan_in(context: df.DurableOrchestrationContext):
    job = context.get_input()
    tasks = [context.call_activity("record_effect", {"run": job["run"], "key": f"k{index:03d}",
                                                     "delay": job.get("delay", 0)})
             for index in range(job["count"])]
    keys = yield context.task_all(tasks)
    return {"count": len(keys), "keys": keys}


@bp.orchestration_trigger(context_name="context")
def with_retries(context: df.DurableOrchestrationContext):
    job = context.get_input()
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=job["attempts"])
    return (yield context.call_activity_with_retry("flaky", retry, job))


@bp.orchestration_trigger(context_name="context")
def with_timer(context: df.DurableOrchestrationContext):
    seconds = context.get_input() or 1
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    return "timer fired"


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    number = context.get_input()
    child = yield context.call_sub_orchestrator("child", number, f"{context.instance_id}-child")
    return {"child": child}


@bp.orchestration_trigger(context_name="context")
def child(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("double", context.get_input()))


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting for approval"})
    decision = yield context.wait_for_external_event("Approval")
    context.set_custom_status({"stage": "decided"})
    return {"approved": decision}


@bp.orchestration_trigger(context_name="context")
def approval_or_timeout(context: df.DurableOrchestrationContext):
    deadline = context.current_utc_datetime + timedelta(seconds=context.get_input() or 1)
    timer = context.create_timer(deadline)
    decision = context.wait_for_external_event("Approval")
    winner = yield context.task_any([decision, timer])
    if winner == decision:
        timer.cancel()
        return {"approved": decision.result}
    return "timed out"


@bp.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    state = context.get_input()
    if state["n"] < state["until"]:
        context.continue_as_new({"n": state["n"] + 1, "until": state["until"]})
        return None
    return state["n"]


@bp.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("double", 1)
    raise ValueError("failing raised on purpose")


@bp.orchestration_trigger(context_name="context")
def missing_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("no_such_activity", 1))
