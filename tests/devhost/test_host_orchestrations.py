"""Durable orchestrations under devhost, driven over HTTP: the app's starters (real SDK client)
and the public management API at /runtime/webhooks/durabletask."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import requests

WEBHOOK = "/runtime/webhooks/durabletask"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_fan_out_fan_in_started_over_http_and_polled_to_completion(devhost):
    run = unique("fan")
    started = devhost.start("fan_out_fan_in", {"run": run, "count": 8})
    first = requests.get(started["statusQueryGetUri"], timeout=30)
    assert first.status_code in (200, 202)
    done = devhost.wait_until(started["id"])
    assert done["runtimeStatus"] == "Completed", done
    assert done["output"]["count"] == 8
    assert sorted(done["output"]["keys"]) == [f"k{index:03d}" for index in range(8)]
    assert sorted(devhost.effects(run)) == [f"k{index:03d}" for index in range(8)]
    final = requests.get(started["statusQueryGetUri"], timeout=30)
    assert final.status_code == 200  # terminal: 200, while running it was 202


def test_retries_that_succeed(devhost):
    started = devhost.start("with_retries", {"key": unique("ok"), "fail_times": 2, "attempts": 3})
    done = devhost.wait_until(started["id"])
    assert (done["runtimeStatus"], done["output"]) == ("Completed", "succeeded on attempt 3")


def test_retries_that_exhaust_fail_the_orchestration(devhost):
    started = devhost.start("with_retries", {"key": unique("bad"), "fail_times": 9, "attempts": 2})
    done = devhost.wait_until(started["id"])
    assert done["runtimeStatus"] == "Failed"
    assert "flaky failed on attempt 2 on purpose" in json.dumps(done["output"])


def test_durable_timer(devhost):
    started = devhost.start("with_timer", 1)
    done = devhost.wait_until(started["id"])
    assert (done["runtimeStatus"], done["output"]) == ("Completed", "timer fired")


def test_sub_orchestration(devhost):
    instance_id = unique("parent")
    devhost.start("parent", 21, instance_id=instance_id)
    done = devhost.wait_until(instance_id)
    assert (done["runtimeStatus"], done["output"]) == ("Completed", {"child": 42})
    child = devhost.status(f"{instance_id}-child").json()
    assert (child["runtimeStatus"], child["output"]) == ("Completed", 42)


def test_external_event_raised_over_http_and_custom_status(devhost):
    started = devhost.start("approval", {"order": 7})
    waiting = devhost.wait_until(started["id"], lambda body: body.get("customStatus") is not None)
    assert waiting["runtimeStatus"] == "Running"
    assert waiting["customStatus"] == {"stage": "waiting for approval"}
    url = started["sendEventPostUri"].replace("{eventName}", "Approval")
    assert requests.post(url, json={"by": "ada"}, timeout=30).status_code == 202
    done = devhost.wait_until(started["id"])
    assert done["output"] == {"approved": {"by": "ada"}}
    assert done["customStatus"] == {"stage": "decided"}


def test_external_event_raised_by_the_sdk_client_in_a_function(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body.get("customStatus") is not None)
    response = requests.post(f"{devhost.url}/api/approve/{started['id']}", json=True, timeout=30)
    assert response.status_code == 202, response.text
    assert devhost.wait_until(started["id"])["output"] == {"approved": True}


def test_when_any_with_timeout_both_ways(devhost):
    late = devhost.start("approval_or_timeout", 1)
    assert devhost.wait_until(late["id"])["output"] == "timed out"
    prompt = devhost.start("approval_or_timeout", 120)
    devhost.wait_until(prompt["id"], lambda body: body["runtimeStatus"] == "Running")
    requests.post(prompt["sendEventPostUri"].replace("{eventName}", "Approval"), json="yes", timeout=30)
    assert devhost.wait_until(prompt["id"])["output"] == {"approved": "yes"}


def test_continue_as_new(devhost):
    started = devhost.start("counter", {"n": 0, "until": 3})
    done = devhost.wait_until(started["id"])
    assert (done["runtimeStatus"], done["output"]) == ("Completed", 3)


def test_orchestrator_that_raises_is_failed_with_its_message(devhost):
    started = devhost.start("failing")
    done = devhost.wait_until(started["id"])
    assert done["runtimeStatus"] == "Failed"
    assert "failing raised on purpose" in json.dumps(done["output"])


def test_missing_activity_fails_clearly_without_hanging(devhost):
    started = devhost.start("missing_activity")
    done = devhost.wait_until(started["id"], timeout=30)
    assert done["runtimeStatus"] == "Failed"
    assert "no_such_activity" in json.dumps(done["output"])


def test_terminate_then_events_and_terminate_are_gone(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    terminate = started["terminatePostUri"].replace("{text}", "test%20over")
    assert requests.post(terminate, timeout=30).status_code == 202
    assert devhost.wait_until(started["id"])["runtimeStatus"] == "Terminated"
    event = started["sendEventPostUri"].replace("{eventName}", "Approval")
    assert requests.post(event, json=1, timeout=30).status_code == 410
    assert requests.post(terminate, timeout=30).status_code == 410


def test_suspend_and_resume(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    assert requests.post(started["suspendPostUri"].replace("{text}", "pause"), timeout=30).status_code == 202
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Suspended")
    assert requests.post(started["resumePostUri"].replace("{text}", "go"), timeout=30).status_code == 202
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    requests.post(started["sendEventPostUri"].replace("{eventName}", "Approval"), json="late", timeout=30)
    assert devhost.wait_until(started["id"])["output"] == {"approved": "late"}


def test_restart_with_a_new_instance_id(devhost):
    started = devhost.start("child", 4)
    devhost.wait_until(started["id"])
    response = requests.post(started["restartPostUri"], timeout=30)
    assert response.status_code == 202
    new_id = response.json()
    assert new_id != started["id"]
    assert devhost.wait_until(new_id)["output"] == 8


def test_restart_in_place_of_a_running_instance_is_409(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    in_place = started["restartPostUri"].replace("restartWithNewInstanceId=true", "") + "&restartWithNewInstanceId=false"
    response = requests.post(in_place, timeout=30)
    assert response.status_code == 409, response.text
    requests.post(started["sendEventPostUri"].replace("{eventName}", "Approval"), json="yes", timeout=30)
    devhost.wait_until(started["id"])


def test_purge_one_instance(devhost):
    started = devhost.start("child", 1)
    devhost.wait_until(started["id"])
    response = requests.delete(started["purgeHistoryDeleteUri"], timeout=30)
    assert (response.status_code, response.json()) == (200, {"instancesDeleted": 1})
    assert devhost.status(started["id"]).status_code == 404
    assert requests.delete(started["purgeHistoryDeleteUri"], timeout=30).status_code == 404


def test_purge_by_filter(devhost):
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    ids = [devhost.start("child", number)["id"] for number in (1, 2)]
    for instance_id in ids:
        devhost.wait_until(instance_id)
    response = requests.delete(f"{devhost.url}{WEBHOOK}/instances/", timeout=30, params={
        "createdTimeFrom": since.isoformat(), "runtimeStatus": "Completed"})
    assert response.status_code == 200
    assert response.json()["instancesDeleted"] >= 2
    assert all(devhost.status(instance_id).status_code == 404 for instance_id in ids)


def test_list_with_filters_top_and_continuation(devhost):
    prefix = unique("list")
    for index in range(3):
        devhost.start("child", index, instance_id=f"{prefix}-{index}")
    for index in range(3):
        devhost.wait_until(f"{prefix}-{index}")
    url = f"{devhost.url}{WEBHOOK}/instances/"
    everything = requests.get(url, params={"instanceIdPrefix": prefix}, timeout=30).json()
    assert sorted(item["instanceId"] for item in everything) == [f"{prefix}-{index}" for index in range(3)]
    running = requests.get(url, params={"instanceIdPrefix": prefix, "runtimeStatus": "Running"}, timeout=30)
    assert running.json() == []
    page = requests.get(url, params={"instanceIdPrefix": prefix, "top": 2}, timeout=30)
    assert len(page.json()) == 2
    token = page.headers["x-ms-continuation-token"]
    rest = requests.get(url, params={"instanceIdPrefix": prefix, "top": 2},
                        headers={"x-ms-continuation-token": token}, timeout=30)
    seen = [item["instanceId"] for item in page.json() + rest.json()]
    assert sorted(seen) == [f"{prefix}-{index}" for index in range(3)]
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    later = requests.get(url, params={"instanceIdPrefix": prefix, "createdTimeFrom": future}, timeout=30)
    assert later.json() == []


def test_status_with_input_and_history(devhost):
    started = devhost.start("child", 3)
    devhost.wait_until(started["id"])
    body = devhost.status(started["id"], showInput="true", showHistory="true", showHistoryOutput="true").json()
    assert body["input"] == 3
    assert body["historyEvents"], body


def test_sdk_client_get_status_through_the_rpc_url(devhost):
    started = devhost.start("child", 5)
    devhost.wait_until(started["id"])
    body = requests.get(f"{devhost.url}/api/status/{started['id']}", timeout=30).json()
    assert (body["runtimeStatus"], body["output"]) == ("Completed", 10)
    assert requests.get(f"{devhost.url}/api/status/no-such-id", timeout=30).status_code == 404


def test_wait_for_completion_answers_with_the_output(devhost):
    response = requests.post(f"{devhost.url}/api/run/child", json=6, timeout=60)
    assert (response.status_code, response.json()) == (200, 12)


def test_start_with_invalid_json_is_400_with_a_message(devhost):
    response = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/child", data=b"{not json", timeout=30)
    assert response.status_code == 400
    assert "must be JSON" in response.json()["error"]


def test_start_of_unknown_orchestrator_is_400_naming_it(devhost):
    response = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/no_such_orchestrator", json=1, timeout=30)
    assert response.status_code == 400
    assert "no_such_orchestrator" in response.json()["error"]


def test_start_with_an_id_already_running_is_409(devhost):
    instance_id = unique("dup")
    first = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/approval/{instance_id}", timeout=30)
    assert first.status_code == 202
    second = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/approval/{instance_id}", timeout=30)
    assert second.status_code == 409
    assert instance_id in second.json()["error"]


def test_unknown_instance_is_404_everywhere(devhost):
    base = f"{devhost.url}{WEBHOOK}/instances/no-such-instance"
    assert requests.get(base, timeout=30).status_code == 404
    assert requests.post(f"{base}/raiseEvent/Approval", json=1, timeout=30).status_code == 404
    assert requests.post(f"{base}/terminate?reason=x", timeout=30).status_code == 404
    assert requests.delete(base, timeout=30).status_code == 404


def test_rewind_and_entities_are_not_supported(devhost):
    response = requests.post(f"{devhost.url}{WEBHOOK}/instances/any/rewind?reason=x", timeout=30)
    assert response.status_code == 501
    assert "rewind" in response.json()["error"]
    assert requests.get(f"{devhost.url}{WEBHOOK}/entities/counter/one", timeout=30).status_code == 501


def test_bad_list_filter_is_400_naming_the_field(devhost):
    response = requests.get(f"{devhost.url}{WEBHOOK}/instances/", params={"runtimeStatus": "Sleeping"}, timeout=30)
    assert response.status_code == 400
    assert "`runtimeStatus`" in response.json()["error"] and "Sleeping" in response.json()["error"]


def test_start_and_wait_answers_with_the_output_when_done_in_time(devhost):
    response = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/child", params={"timeout": 30}, json=3,
                             timeout=60)
    assert (response.status_code, response.json()) == (200, 6)


def test_purge_by_filter_without_created_time_from_is_refused(devhost):
    response = requests.delete(f"{devhost.url}{WEBHOOK}/instances/", timeout=30)
    assert response.status_code == 400
    assert "`createdTimeFrom` is required" in response.json()["error"]
