"""Run devhost as a separate process over the test sample app, and talk to it only over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devhost.azurite import free_port
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
TERMINAL = {"Completed", "Failed", "Terminated"}


@dataclass
class DevhostProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    effects_dir: Path
    store: Path
    key: str | None = None  # sent as ?code= on management API calls

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def effects(self, run: str) -> list[str]:
        path = self.effects_dir / f"{run}.txt"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def start(self, name: str, data=None, instance_id: str | None = None) -> dict:
        """Start through the app's own HTTP starter (the real SDK client); returns the check-status payload."""
        path = f"/api/orchestrators/{name}" + (f"/{instance_id}" if instance_id else "")
        response = requests.post(self.url + path, data=json.dumps(data) if data is not None else b"", timeout=30)
        assert response.status_code == 202, response.text
        return response.json()

    def status(self, instance_id: str, **query) -> requests.Response:
        if self.key:
            query["code"] = self.key
        return requests.get(f"{self.url}/runtime/webhooks/durabletask/instances/{instance_id}",
                            params=query, timeout=30)

    def wait_until(self, instance_id: str, done=None, timeout: float = 60) -> dict:
        """Poll the public status route until `done(body)` (default: terminal); fail with the host log."""
        done = done or (lambda body: body["runtimeStatus"] in TERMINAL)

        def status() -> dict | str:
            response = self.status(instance_id)
            return response.json() if response.status_code in (200, 202) else f"HTTP {response.status_code}"

        return wait_until(status, lambda body: isinstance(body, dict) and done(body), timeout=timeout,
                          what=f"instance {instance_id}", context=lambda: self.log()[-4000:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def launch_devhost(workdir: Path, connection_string: str, *extra_args: str, env: dict | None = None,
                   store: Path | None = None, effects_dir: Path | None = None,
                   app_dir: Path = SAMPLE_APP, wait: bool = True) -> DevhostProcess:
    """Start `python -m devhost start` and (with `wait`) return once /admin/host/status answers 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    store = store or workdir / "taskhub.sqlite"
    effects_dir = effects_dir or workdir / "effects"
    effects_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"devhost-{port}.log"
    process_env = {**os.environ, "AzureWebJobsStorage": connection_string,
                   "SAMPLE_EFFECTS_DIR": str(effects_dir), "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(app_dir), "--port", str(port),
         "--store", str(store), *extra_args],
        cwd=REPO_ROOT, env=process_env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    host = DevhostProcess(f"http://127.0.0.1:{port}", process, log_path, effects_dir, store,
                          key=process_env.get("FUNCTIONS_KEY"))
    if wait:
        wait_ready(host)
    return host


def wait_ready(host: DevhostProcess, timeout: float = 60) -> None:
    def answers() -> int:
        if host.process.poll() is not None:
            raise RuntimeError(f"devhost exited with {host.process.returncode}:\n{host.log()}")
        return requests.get(f"{host.url}/admin/host/status", timeout=2).status_code

    try:
        # Not listening yet, or too busy to answer in 2 s (a loaded machine): ask again.
        wait_until(answers, lambda code: code == 200, timeout=timeout, what=f"devhost at {host.url} to answer",
                   ignoring=(requests.ConnectionError, requests.Timeout), context=host.log)
    except BaseException:
        host.stop(signal.SIGKILL)
        raise


@pytest.fixture(scope="module")
def devhost(tmp_path_factory, storage_connection_string):
    """One devhost per test module, over the session's Azurite; SIGTERMed after the module."""
    host = launch_devhost(tmp_path_factory.mktemp("devhost"), storage_connection_string)
    yield host
    code = host.stop()
    assert code == 0, f"devhost exited with {code} on SIGTERM:\n{host.log()}"


@pytest.fixture(scope="session")
def launch(storage_connection_string):
    """`launch(workdir, *args, **kwargs)`: a devhost over the session's Azurite (the caller stops it)."""
    def _launch(workdir: Path, *args: str, **kwargs) -> DevhostProcess:
        return launch_devhost(workdir, storage_connection_string, *args, **kwargs)
    return _launch


class Poller:
    """Run a storage trigger's poller (blob or queue) as a background task inside `async with`."""

    def __init__(self, poller):
        self.poller = poller
        self.stop = asyncio.Event()

    async def __aenter__(self):
        self.task = asyncio.create_task(self.poller.run(self.stop))
        return self

    async def __aexit__(self, *_):
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
