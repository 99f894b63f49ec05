"""The Durable management API as the extension documents it, where devhost once differed (issue 11)."""

from __future__ import annotations

import uuid

import requests

WEBHOOK = "/runtime/webhooks/durabletask"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_failed_instance_answers_500_when_asked_to(devhost):
    started = devhost.start("failing")
    devhost.wait_until(started["id"])
    assert devhost.status(started["id"]).status_code == 200
    asked = devhost.status(started["id"], returnInternalServerErrorOnFailure="true")
    assert asked.status_code == 500 and asked.json()["runtimeStatus"] == "Failed"


def test_a_running_instance_is_not_purged(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    response = requests.delete(started["purgeHistoryDeleteUri"], timeout=30)
    assert response.status_code == 404, response.text
    assert devhost.status(started["id"]).json()["runtimeStatus"] == "Running"
    requests.post(started["terminatePostUri"].replace("{text}", "done"), timeout=30)


def test_list_leaves_out_inputs_when_asked(devhost):
    prefix = unique("quiet")
    devhost.start("child", 5, instance_id=f"{prefix}-0")
    devhost.wait_until(f"{prefix}-0")
    url = f"{devhost.url}{WEBHOOK}/instances/"
    shown = requests.get(url, params={"instanceIdPrefix": prefix}, timeout=30).json()
    assert shown[0]["input"] == 5
    hidden = requests.get(url, params={"instanceIdPrefix": prefix, "showInput": "false"}, timeout=30).json()
    assert "input" not in hidden[0] or hidden[0]["input"] is None


def test_raise_event_refuses_a_body_that_is_not_json(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    url = started["sendEventPostUri"].replace("{eventName}", "Approval")
    for body, content_type in ((b"yes please", "application/json"), (b'"yes"', "text/plain")):
        refused = requests.post(url, data=body, headers={"content-type": content_type}, timeout=30)
        assert refused.status_code == 400 and "JSON" in refused.json()["error"], (body, content_type)
    assert devhost.status(started["id"]).json()["runtimeStatus"] == "Running"
    requests.post(started["terminatePostUri"].replace("{text}", "done"), timeout=30)


def test_operation_names_are_case_insensitive(devhost):
    started = devhost.start("approval")
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    base = f"{devhost.url}{WEBHOOK}/instances/{started['id']}"
    assert requests.post(f"{base}/SUSPEND", timeout=30).status_code == 202
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Suspended")
    assert requests.post(f"{base}/Resume", timeout=30).status_code == 202
    devhost.wait_until(started["id"], lambda body: body["runtimeStatus"] == "Running")
    assert requests.post(f"{base}/RaiseEvent/Approval", json={"ok": True}, timeout=30).status_code == 202
    devhost.wait_until(started["id"])


def test_show_history_merges_scheduling_into_completion_as_the_extension_does(devhost):
    started = devhost.start("child", 3)
    devhost.wait_until(started["id"])
    events = devhost.status(started["id"], showHistory="true", showHistoryOutput="true").json()["historyEvents"]
    kinds = [event["EventType"] for event in events]
    assert "TaskScheduled" not in kinds
    (completed,) = [event for event in events if event["EventType"] == "TaskCompleted"]
    assert completed["FunctionName"] == "double" and completed["ScheduledTime"] <= completed["Timestamp"]
    assert completed["Result"] == 6  # the JSON value, not its text
    assert events[-1]["EventType"] == "ExecutionCompleted" and events[-1]["Result"] == 6


def test_list_pages_by_100_by_default_and_the_continuation_header_reads_the_rest(devhost):
    """The extension's page size when `top` is not given is 100 (OrchestrationStatusQueryCondition.
    PageSize), with the next page's token in the `x-ms-continuation-token` response header, sent
    back as a request header; the SDK (1.7.0) reads one page and drops the token."""
    prefix = unique("paged")
    ids = [f"{prefix}-{index:03d}" for index in range(105)]
    url = f"{devhost.url}{WEBHOOK}/instances/"
    for instance_id in ids:  # ended by their own one-second timer: nothing left running
        started = requests.post(f"{devhost.url}{WEBHOOK}/orchestrators/approval_or_timeout/{instance_id}",
                                json=1, timeout=30)
        assert started.status_code == 202, started.text
    first = requests.get(url, params={"instanceIdPrefix": prefix}, timeout=30)
    assert len(first.json()) == 100 and first.headers.get("x-ms-continuation-token")
    rest = requests.get(url, params={"instanceIdPrefix": prefix}, timeout=30,
                        headers={"x-ms-continuation-token": first.headers["x-ms-continuation-token"]})
    assert len(rest.json()) == 5 and not rest.headers.get("x-ms-continuation-token")
    assert sorted(item["instanceId"] for item in first.json() + rest.json()) == ids
    small = requests.get(url, params={"instanceIdPrefix": prefix, "top": 40}, timeout=30)
    assert len(small.json()) == 40 and small.headers.get("x-ms-continuation-token")
    sdk = requests.get(f"{devhost.url}/api/listed/{prefix}", timeout=30)
    assert len(sdk.json()) == 100, "the SDK's get_status_by reads one page"
    refused = requests.get(url, params={"instanceIdPrefix": prefix}, timeout=30,
                           headers={"x-ms-continuation-token": "not-a-token"})
    assert refused.status_code == 400 and "x-ms-continuation-token" in refused.json()["error"]
    for instance_id in (ids[0], ids[-1]):
        devhost.wait_until(instance_id)
