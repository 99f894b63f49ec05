"""The split Azure runs: a control host without GPU work, and a GPU pool that exists only while
batches wait (docs/deploy.md, "Paying for the GPU only while rendering"), here as devhost runs
it: `IMAGEGEN_APP_ROLE=control` for the one, `python -m devhost pool` of
`IMAGEGEN_APP_ROLE=render` hosts for the other, both over one storage account."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.app.conftest import AppClient, app_settings, launch_app, tiny_job
from tests.devhost.conftest import REPO_ROOT
from tests.waiting import wait_until

COOLDOWN = 2  # seconds the render queue stays empty before the pool stops its worker


@pytest.fixture(scope="module")
def split(tmp_path_factory, storage_connection_string):
    workdir = tmp_path_factory.mktemp("split")
    control = launch_app(tmp_path_factory, storage_connection_string, workdir=workdir, IMAGEGEN_APP_ROLE="control")
    settings = app_settings(workdir)
    pool_log = workdir / "pool.log"
    pool = subprocess.Popen(
        [sys.executable, "-m", "devhost", "pool", "--app-dir", str(REPO_ROOT), "--queue",
         settings["IMAGEGEN_RENDER_QUEUE"], "--cooldown", str(COOLDOWN), "--state-dir", str(workdir / "pool")],
        cwd=REPO_ROOT, stdout=open(pool_log, "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "AzureWebJobsStorage": storage_connection_string, "PYTHONUNBUFFERED": "1", **settings,
             "IMAGEGEN_APP_ROLE": "render"})
    wait_until(lambda: pool_log.read_text(), lambda text: "devhost pool ready" in text, timeout=30,
               what="the pool to start", context=lambda: pool_log.read_text())
    yield control, pool_log
    pool.send_signal(signal.SIGTERM)
    assert pool.wait(timeout=60) == 0, pool_log.read_text()
    control.stop()


def worker_pids(pool_log) -> list[int]:
    """The pids of the workers the pool said it started."""
    return [int(line.split("(pid ", 1)[1].split(",", 1)[0]) for line in pool_log.read_text().splitlines()
            if "started worker" in line]


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A stopped worker the pool has not waited for yet is a zombie: gone for our purposes.
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        return stat.read().split()[2] != "Z"


def test_a_job_renders_on_a_worker_the_pool_starts_for_it_and_the_worker_stops_once_the_queue_is_empty(split, store):
    control, pool_log = split
    # The control host runs no GPU work: the render function is not among its functions.
    assert "render_order" not in control.log() and "take_render_outcome" in control.log()
    assert worker_pids(pool_log) == []  # no work yet: no worker

    user = AppClient(control.url, store)
    job_id = user.submit(tiny_job("split"))
    assert user.wait(job_id)["status"] == "completed"
    made = [variant["blob"] for variant in user.manifest(job_id)["variants"]]
    assert len(made) == 2 and all(store.exists(ref) for ref in made)

    # One worker rendered it: it runs the render function alone.
    [pid] = worker_pids(pool_log)
    worker_log = next(line.split("log ", 1)[1].rstrip(")") for line in pool_log.read_text().splitlines()
                      if "started worker 1" in line)
    functions = open(worker_log, encoding="utf-8").read()
    assert "render_order: queueTrigger" in functions and "submit_job" not in functions

    # With the queue empty, the pool stops the worker after the cooldown, and starts none.
    wait_until(pool_log.read_text, lambda text: "worker 1 stopped" in text, timeout=60,
               what="the pool to stop its idle worker")
    assert not running(pid) and worker_pids(pool_log) == [pid]
