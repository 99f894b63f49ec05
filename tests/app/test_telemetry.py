"""A job's trace, metrics and logs, as the local JSON-lines telemetry file holds them."""

from __future__ import annotations

import json

from tests.app.conftest import tiny_job
from tests.waiting import wait_until


def records(app_host) -> list[dict]:
    path = app_host.store.parent / "telemetry.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_a_job_is_one_trace_with_a_span_per_activity_gpu_call_check_and_storage_call(app, app_host):
    job_id = app.submit(tiny_job("traced", seeds=2))
    assert app.wait(job_id)["status"] == "completed"

    spans = [r for r in records(app_host) if r["record"] == "span"]
    [job] = [s for s in spans if s["name"] == "job" and s["attributes"]["job.id"] == job_id]
    assert job["parent_id"] is None
    assert job["attributes"] | {"job.variants": 2, "job.status": "completed", "job.ok": 2} == job["attributes"]
    trace = [s for s in spans if s["trace_id"] == job["trace_id"]]
    by_id = {s["span_id"]: s for s in trace}
    activities = [s for s in trace if s["parent_id"] == job["span_id"]]
    # Every activity of the job hangs under the job span, and carries its id.
    assert sorted(s["name"] for s in activities) == [
        "activity generate_images", "activity moderate_text", "activity write_manifest"]
    assert all(s["attributes"]["job.id"] == job_id for s in activities)
    assert all(job["start"] <= s["start"] and s["end"] <= job["end"] + 1 for s in activities)
    [generate] = [s for s in activities if s["name"] == "activity generate_images"]
    assert generate["attributes"] | {"batch.size": 2, "image.width": 64, "image.height": 64,
                                     "image.steps": 2} == generate["attributes"]

    def children(parent: dict, name: str) -> list[dict]:
        return [s for s in trace if s["parent_id"] == parent["span_id"] and s["name"].startswith(name)]

    [gpu] = children(generate, "gpu_batch")
    assert gpu["attributes"] | {"batch.size": 2, "image.width": 64, "image.steps": 2, "device": "cpu"} == gpu["attributes"]
    # The GPU call's images are checked together, then each is written once, where its verdict says.
    [check] = children(generate, "check_images")
    assert check["start"] >= gpu["end"] and check["attributes"]["images"] == 2
    [safety] = children(check, "safety.check_images")
    assert safety["attributes"] == {"provider": "local", "images": 2}
    assert len(children(check, "BlobClient.upload_blob")) == 2
    assert all(s["parent_id"] in by_id or s is job for s in trace)

    # Logs made inside the job's activities carry its id, in the host and in its checker process.
    logs = [r for r in records(app_host) if r["record"] == "log" and r["job_id"] == job_id]
    assert any("made 2 images" in r["message"] for r in logs)
    assert any("checked 2 images" in r["message"] for r in logs)
    assert {r["trace_id"] for r in logs} == {job["trace_id"]}


def test_images_and_seconds_per_image_are_exported_as_metrics(app, app_host):
    job_id = app.submit(tiny_job("metered", seeds=2))
    assert app.wait(job_id)["status"] == "completed"
    # The metrics reader exports every 0.5 s.
    names = wait_until(lambda: {r["name"]: r for r in records(app_host) if r["record"] == "metric"},
                       lambda names: {"imagegen.images", "imagegen.image.seconds"} <= names.keys(),
                       timeout=30, interval=0.2, what="the image metrics in the telemetry file")
    assert names["imagegen.images"]["value"] >= 2 and names["imagegen.images"]["attributes"] == {"device": "cpu"}
    assert names["imagegen.image.seconds"]["count"] >= 2 and names["imagegen.image.seconds"]["sum"] > 0
    assert "imagegen.gpu.memory" not in names  # no GPU here: no GPU memory figure
