"""Start Azurite (the Azure Storage emulator, pinned in package.json) when nothing serves storage.

Used by `python -m devhost start` when `AzureWebJobsStorage` is `UseDevelopmentStorage=true`,
and by the test session, which starts a private instance on free ports.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# Azurite's built-in development account. The key is the emulator's published, well-known
# value (identical in every Azurite and in Microsoft's docs), not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

REPO_ROOT = Path(__file__).resolve().parent.parent


def connection_string(host: str = "127.0.0.1", blob_port: int = 10000, queue_port: int = 10001,
                      table_port: int = 10002) -> str:
    """The explicit form of `UseDevelopmentStorage=true`, for any ports."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table_port}/{DEV_ACCOUNT};"
    )


def resolve_connection_string(value: str) -> str:
    """Expand `UseDevelopmentStorage=true` to the explicit connection string; pass others through."""
    if value.strip().rstrip(";").lower() == "usedevelopmentstorage=true":
        return connection_string()
    return value


def is_listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def azurite_executable() -> Path:
    path = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if not path.exists():
        raise FileNotFoundError(
            f"Azurite is not installed at {path}: run `npm ci` (or `make setup`) in {REPO_ROOT}"
        )
    return path


@dataclass
class Azurite:
    """A running Azurite; `process` is None when we reused one that was already listening."""

    host: str
    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.blob_port, self.queue_port, self.table_port)

    def stop(self, timeout: float = 10.0) -> None:
        """End Azurite; `timeout` is how long its own shutdown may take before it is killed.

        An idle Azurite takes about 10 s to exit on SIGTERM: devhost waits, so persisted data
        is flushed; throwaway test instances pass a short timeout.
        """
        if self.process is None or self.process.poll() is not None:
            return
        # Azurite runs in its own process group (node plus any children): end them all.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=5)


def start_azurite(data_dir: str | Path, *, host: str = "127.0.0.1", blob_port: int = 10000,
                  queue_port: int = 10001, table_port: int = 10002,
                  timeout: float = 30.0) -> Azurite:
    """Start Azurite with its data under `data_dir` and wait until it answers."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(azurite_executable()), "--silent", "--skipApiVersionCheck", "--loose",
        "--location", str(data_dir),
        "--blobHost", host, "--blobPort", str(blob_port),
        "--queueHost", host, "--queuePort", str(queue_port),
        "--tableHost", host, "--tablePort", str(table_port),
    ]
    log = open(data_dir / "azurite.log", "ab")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    azurite = Azurite(host, blob_port, queue_port, table_port, process)
    deadline = time.monotonic() + timeout
    while not all(is_listening(host, port) for port in (blob_port, queue_port, table_port)):
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {process.returncode}; see {data_dir / 'azurite.log'}")
        if time.monotonic() > deadline:
            azurite.stop()
            raise TimeoutError(f"Azurite did not answer on {host}:{blob_port} within {timeout:.0f}s")
        time.sleep(0.1)
    return azurite


def ensure_azurite(data_dir: str | Path, host: str = "127.0.0.1") -> Azurite:
    """Reuse storage already listening on the default ports, else start Azurite there."""
    if is_listening(host, 10000):
        return Azurite(host, 10000, 10001, 10002, process=None)
    return start_azurite(data_dir, host=host)
