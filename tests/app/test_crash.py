"""Crash trials: the host killed (SIGKILL) in the middle of a job, then started again over
the same task hub. The job must end, and storage must agree with its manifest: every image
it made recorded, nothing published without a safe verdict, no orphan in quarantine."""

from __future__ import annotations

import signal

import pytest

from tests.app.conftest import AppClient, launch_app, tiny_job
from tests.app.storage_invariants import storage_problems
from tests.waiting import wait_until


@pytest.mark.parametrize("kill_after_images", [2])
def test_a_job_killed_mid_generation_ends_with_storage_matching_its_manifest(
        tmp_path_factory, storage_connection_string, store, kill_after_images):
    first = launch_app(tmp_path_factory, storage_connection_string)
    workdir, task_hub = first.log_path.parent, first.store
    try:
        app = AppClient(first.url, store)
        job_id = app.submit(tiny_job("crashed", seeds=8, sizes=["96x96"], steps=10))  # 2 GPU batches
        wait_until(lambda: len(store.list("quarantine", f"{job_id}/")) + len(store.list("outputs", f"{job_id}/")),
                   lambda made: made >= kill_after_images, timeout=120, interval=0.05,
                   what=f"{kill_after_images} images of {job_id} in storage before the kill")
    finally:
        first.stop(signal.SIGKILL)

    second = launch_app(tmp_path_factory, storage_connection_string, workdir=workdir, store=task_hub)
    try:
        app = AppClient(second.url, store)
        done = app.wait(job_id, timeout=300)
        assert done["status"] == "completed", done
        manifest = app.manifest(job_id)
        assert manifest["totals"]["ok"] == 8
        assert storage_problems(store, job_id, manifest) == []
    finally:
        second.stop()
