"""`python -m devhost pool`: worker hosts started and stopped on a queue's length, as Azure
Container Apps scales an app from zero.

In Azure an app with `minReplicas: 0` and a queue trigger is scaled by KEDA's azure-queue
scaler, which Container Apps derives from the trigger: no replica while the queue is empty,
one more for each `--per-worker` messages waiting (up to `--max-workers`), and none again
once the queue has stayed empty for the cooldown. This does the same with devhost
processes, so a split like Azure's runs on one machine: a control host, and a pool of
worker hosts of the same app that exists only while there is work.

The length is the queue's approximate message count, which, like the scaler's default
(`queueLengthStrategy: all`), counts the messages a worker is running too: a worker is never
stopped under a running function. A worker is `python -m devhost start --app-dir DIR` with
the pool's environment (so the caller says which functions it runs, e.g. the app's role
setting), a free port, a task hub file of its own, and its output in a log file.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.queue import LinearRetry, QueueClient

from devhost.storage_polling import SDK_RETRY, STORAGE_NAME

log = logging.getLogger("devhost.pool")

STOP_GRACE = 30  # seconds a worker has to stop cleanly before it is killed


@dataclass
class PoolOptions:
    app_dir: Path
    queue: str
    max_workers: int = 1
    per_worker: int = 1  # messages waiting per worker (KEDA's `queueLength`)
    cooldown: float = 300.0  # seconds the queue stays empty before the workers stop (Container Apps' default)
    interval: float = 1.0  # seconds between looks at the queue
    state_dir: Path | None = None  # default: <app-dir>/.devhost/pool

    def __post_init__(self) -> None:
        if not STORAGE_NAME.match(self.queue):
            raise ValueError(f"--queue must be a Storage queue name (3-63 lowercase letters, digits and single "
                             f"hyphens), got {self.queue!r}")
        if self.max_workers < 1 or self.per_worker < 1:
            raise ValueError(f"--max-workers and --per-worker must be at least 1, got {self.max_workers} and "
                             f"{self.per_worker}")


@dataclass
class Worker:
    number: int
    process: subprocess.Popen
    log_path: Path


@dataclass
class Pool:
    options: PoolOptions
    connection: str  # the queue's account, a resolved connection string
    workers: list[Worker] = field(default_factory=list)
    started: int = 0  # workers started so far: each gets the next number

    def __post_init__(self) -> None:
        self.state_dir = self.options.state_dir or self.options.app_dir / ".devhost" / "pool"
        self.queue = QueueClient.from_connection_string(self.connection, self.options.queue,
                                                        retry_policy=LinearRetry(**SDK_RETRY))

    def queue_length(self) -> int:
        """Messages in the queue, those being run included; a queue not made yet is empty."""
        try:
            return self.queue.get_queue_properties().approximate_message_count or 0
        except ResourceNotFoundError:
            return 0

    def wanted(self, length: int) -> int:
        return min(self.options.max_workers, math.ceil(length / self.options.per_worker))

    async def run(self, stop: asyncio.Event) -> None:
        empty_since: float | None = None
        try:
            while not stop.is_set():
                self.reap()
                try:
                    length = await asyncio.to_thread(self.queue_length)
                except AzureError as error:
                    log.warning("pool: cannot read queue %s (%s); asking again", self.options.queue,
                                str(error).splitlines()[0] if str(error) else type(error).__name__)
                    length = None
                if length:
                    empty_since = None
                    while len(self.workers) < self.wanted(length):
                        self.start_worker(length)
                elif length == 0:
                    empty_since = empty_since or time.monotonic()
                    if self.workers and time.monotonic() - empty_since >= self.options.cooldown:
                        print(f"pool: queue {self.options.queue} empty for {self.options.cooldown:g} s: "
                              f"stopping {len(self.workers)} worker(s)", flush=True)
                        await asyncio.to_thread(self.stop_workers)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.options.interval)
                except asyncio.TimeoutError:
                    pass
        finally:
            await asyncio.to_thread(self.stop_workers)
            self.queue.close()

    def start_worker(self, length: int) -> None:
        self.started += 1
        number = self.started
        folder = self.state_dir / f"worker-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / "devhost.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "devhost", "start", "--app-dir", str(self.options.app_dir), "--port", "0",
             "--store", str(folder / "taskhub.sqlite")],
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.workers.append(Worker(number, process, log_path))
        print(f"pool: {length} message(s) on {self.options.queue}: started worker {number} "
              f"(pid {process.pid}, log {log_path})", flush=True)

    def reap(self) -> None:
        """Forget workers that ended by themselves (a crash): the next look starts another if needed."""
        for worker in [w for w in self.workers if w.process.poll() is not None]:
            print(f"pool: worker {worker.number} exited with {worker.process.returncode} (log {worker.log_path})",
                  flush=True)
            self.workers.remove(worker)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            print(f"pool: worker {worker.number} stopped", flush=True)
        self.workers.clear()

