"""Schedules in the `schedules` container start one job per due slot."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import yaml

from tests.app.conftest import tiny_job
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_schedule_due_every_few_seconds_runs_once_per_slot(app, store):
    schedule = {"name": "every-three", "cron": "*/3 * * * * *", "job": tiny_job("scheduled", seeds=1)}
    store.put("schedules/every-three.yaml", yaml.safe_dump(schedule).encode())
    try:
        runs = wait_until(lambda: [j for j in app.jobs() if j["source"] == "schedule" and j["origin"] == "every-three"],
                          lambda runs: len(runs) >= 3, timeout=60, interval=0.5, what="three scheduled runs")
    finally:
        store.delete("schedules/every-three.yaml")
    ids = [run["id"] for run in runs]
    assert len(ids) == len(set(ids))  # one job per slot, never two
    slots = sorted(datetime.strptime(i.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ") for i in ids)
    assert all(slot.second % 3 == 0 for slot in slots)
    for run in runs:
        assert app.wait(run["id"])["status"] == "completed"


def test_an_invalid_schedule_gets_an_error_report_beside_it(app, store):
    store.put("schedules/broken.yaml", yaml.safe_dump({"cron": "every monday", "job": tiny_job("x")}).encode())
    try:
        wait_until(lambda: store.exists("schedules/broken.yaml.error.json"), timeout=20, interval=0.25,
                   what="the error report of schedules/broken.yaml")
        report = json.loads(store.get("schedules/broken.yaml.error.json"))
    finally:
        store.delete("schedules/broken.yaml")
    assert report["errors"][0]["path"] == "cron"
    assert "six-field NCRONTAB" in report["errors"][0]["message"]


def test_a_scheduled_img2img_job_reads_its_bare_image_name_from_inputs(app, store):
    # The same start path as HTTP and drops: a bare image name is a blob in inputs/,
    # checked before the job starts (it used to reach the GPU activity unresolved).
    store.put("inputs/scheduled-source.png", (EXAMPLES / "sneaker.png").read_bytes())
    job = tiny_job("scheduled-img2img", seeds=1)
    job["prompts"][0].update({"image": "scheduled-source.png", "strength": 0.5})
    store.put("schedules/img2img.yaml", yaml.safe_dump({"name": "img2img", "cron": "*/2 * * * * *", "job": job}).encode())
    try:
        run = app.wait_for_job(lambda j: j["source"] == "schedule" and j["origin"] == "img2img")
    finally:
        store.delete("schedules/img2img.yaml")
    assert app.wait(run["id"])["status"] == "completed"
    assert {v["source_image"] for v in app.manifest(run["id"])["variants"]} == {"inputs/scheduled-source.png"}
