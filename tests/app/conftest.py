"""The whole app through devhost + Azurite + the tiny model, driven as a user drives it.

Tests talk to the app only over HTTP and by uploading blobs. One devhost serves the
module's tests; a test-only fault setting makes jobs named `flaky-*` fail once per batch
and `broken-*` always, and dropped files named `poisoned-drop-*` fail to be read every
time; a user blocklist makes one word a blocked prompt.
"""

from __future__ import annotations

import hashlib

import pytest
import requests

from devhost.azurite import free_port, start_azurite
from imagegen.jobs.foundry_body import job_from_foundry
from imagegen.storage.blobs import BlobStore
from tests.app.storage_invariants import assert_job_storage_consistent
from tests.devhost.conftest import REPO_ROOT, launch_devhost
from tests.waiting import wait_until

ENDED = {"completed", "partial", "rejected", "failed", "cancelled"}
BLOCKED_WORD = "forbiddenword"
# A Foundry request whose every generation fails: its job is named from the body's hash.
FOUNDRY_BROKEN_BODY = {"prompt": "a lighthouse that never renders", "size": "64x64", "steps": 2}
FOUNDRY_BROKEN_JOB = job_from_foundry(FOUNDRY_BROKEN_BODY)[0].name
# Dropped files whose names start so fail every time drop_job reads them: the poison path.
POISON_DROP = "poisoned-drop-"


class AppClient:
    """A user of the HTTP API. With `store`, every job it waits for is checked, once ended,
    against the storage invariants (tests/app/storage_invariants.py)."""

    def __init__(self, url: str, store: BlobStore | None = None):
        self.url = url
        self.store = store

    def post_job(self, job: dict) -> requests.Response:
        return requests.post(f"{self.url}/api/jobs", json=job, timeout=60)

    def submit(self, job: dict) -> str:
        response = self.post_job(job)
        assert response.status_code == 202, response.text
        return response.json()["jobId"]

    def job(self, job_id: str) -> dict:
        response = requests.get(f"{self.url}/api/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, job_id: str, timeout: float = 180) -> dict:
        job = wait_until(lambda: self.job(job_id), lambda job: job["status"] in ENDED, timeout=timeout,
                         interval=0.25, what=f"job {job_id} to end")
        if self.store is not None:
            assert_job_storage_consistent(self.store, job_id)
        return job

    def manifest(self, job_id: str) -> dict:
        response = requests.get(f"{self.url}/api/jobs/{job_id}/manifest", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def jobs(self, **params) -> list[dict]:
        response = requests.get(f"{self.url}/api/jobs", params={"top": 200, **params}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["jobs"]

    def wait_for_job(self, match, timeout: float = 60) -> dict:
        """The first listed job for which `match(job)` holds (jobs started by blobs or timers)."""
        jobs = wait_until(self.jobs, lambda jobs: any(match(job) for job in jobs), timeout=timeout, interval=0.5,
                          what="a listed job to match")
        return next(job for job in jobs if match(job))


def tiny_job(name: str, **variants) -> dict:
    """A job the tiny model makes in well under a second per image."""
    return {
        "name": name,
        "prompts": [{"text": "a red bicycle leaning on a wall", "negative": "blurry"}],
        "variants": {"seeds": 2, "sizes": ["64x64"], "steps": 2, **variants},
    }


def launch_app(tmp_path_factory, connection_string: str, workdir=None, store=None, wait: bool = True,
               args: tuple[str, ...] = (), **env: str):
    """The app under devhost; `workdir` and `store` again start it over a killed host's task hub;
    `args` go to `devhost start` (e.g. `--require-keys`)."""
    workdir = workdir or tmp_path_factory.mktemp("app")
    return launch_devhost(workdir, connection_string, *args, app_dir=REPO_ROOT, store=store, wait=wait,
                          env={**app_settings(workdir), **env})


def app_settings(workdir) -> dict[str, str]:
    """The settings the tests run the app with (its files in `workdir`)."""
    blocklist = workdir / "blocklist.txt"
    blocklist.write_text(f"{BLOCKED_WORD}\n", encoding="utf-8")
    return {
        "IMAGEGEN_MODEL": "tiny",
        "SAFETY_PROVIDER": "local",
        "SAFETY_BLOCKLIST_FILE": str(blocklist),
        "IMAGEGEN_FAULTS": ("flaky-*=fail-once,broken-*=fail-always,halfchecked-*=fail-check-once,unsigned-*=fail-sign,"
                            f"{FOUNDRY_BROKEN_JOB}-*=fail-always,{POISON_DROP}*=fail-drop"),
        "IMAGEGEN_SCHEDULE_TICK": "*/1 * * * * *",
        "IMAGEGEN_RETENTION_TICK": "0 30 3 * * *",  # daily; tests/app/test_job_listing.py runs it every 2 s
        "IMAGEGEN_MAX_BATCH": "4",
        "IMAGEGEN_DEFAULT_SIZE": "64x64",  # .txt drops: small enough for the tiny model on a CPU
        "IMAGEGEN_DEFAULT_STEPS": "2",
        "IMAGEGEN_TELEMETRY_FILE": str(workdir / "telemetry.jsonl"),
        "OTEL_METRIC_EXPORT_INTERVAL": "500",  # ms: the metrics reach the file while a test looks
        # The hosts of these tests share one storage account: each orders its batches on a
        # queue of its own (a host started again over the same workdir takes up the same one).
        "IMAGEGEN_RENDER_QUEUE": f"render-{hashlib.sha256(str(workdir).encode()).hexdigest()[:16]}",
    }


@pytest.fixture(scope="session")
def storage_connection_string(tmp_path_factory):
    """The app's storage account: an Azurite of its own, as each app has an account in Azure.

    The host's queues are per account: the app takes every message on the blob trigger's
    poison queue (`move_poisoned_drop`), and the devhost tests poison blobs of their own."""
    instance = start_azurite(tmp_path_factory.mktemp("app-azurite"), blob_port=free_port(), queue_port=free_port(),
                             table_port=free_port())
    yield instance.connection_string
    instance.stop(timeout=1)  # its data is thrown away: no need to wait for a flush


@pytest.fixture(scope="session")
def app_host(tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string)
    yield host
    host.stop()


@pytest.fixture(scope="session")
def app(app_host, store) -> AppClient:
    return AppClient(app_host.url, store)


@pytest.fixture(scope="session")
def store(storage_connection_string) -> BlobStore:
    store = BlobStore.from_connection_string(storage_connection_string)
    store.ensure_containers()
    return store
