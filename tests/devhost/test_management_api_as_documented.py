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


def test_list_leaves_out_inputs_when_asked_and_pages_by_default(devhost):
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
