"""The host: starts storage, the durable engine, the web server and the triggers, and stops them in reverse.

Start order: storage (Azurite when the app asks for development storage and nothing serves it),
the engine (so the management API answers as soon as the port is open), the web server, then
the blob, timer and queue triggers (their functions may call the management API through the
client binding). Stop is the same list backwards; each step runs even if an earlier one failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost import azurite
from devhost.app_loader import LoadedApp
from devhost.client_binding import client_binding_json
from devhost.http_server import HttpServer, ServerConfig, build_app
from devhost.http_triggers import http_functions
from devhost.invoke import Invoker
from devhost.management_api import ManagementApi

log = logging.getLogger("devhost")

KEY_SETTING = "FUNCTIONS_KEY"  # the one key for `function`, `admin` and the management API
STORAGE_SETTING = "AzureWebJobsStorage"


@dataclass
class HostOptions:
    port: int = 7071
    store: Path | None = None  # default: <app-dir>/.devhost/taskhub.sqlite
    require_keys: bool = False
    bind: str = "127.0.0.1"
    rpc_port: int = 0  # 0: any free loopback port


def resolve_key(app_dir: Path, require_keys: bool) -> str | None:
    """The function key: FUNCTIONS_KEY when set; a generated one with --require-keys; else None (open).

    A generated key goes to a file readable only by its owner, never to the log.
    """
    key = os.environ.get(KEY_SETTING) or None
    if key or not require_keys:
        return key
    path = app_dir / ".devhost" / "function.key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key, encoding="utf-8")
    log.warning("--require-keys: no %s set, generated a key in %s", KEY_SETTING, path)
    return key


def storage_connection(setting: str) -> str:
    """The connection string behind an app setting (`UseDevelopmentStorage=true` expanded)."""
    value = os.environ.get(setting)
    if not value:
        raise KeyError(f"app setting `{setting}` is not set: put a storage connection string in it "
                       f"(local.settings.json Values or the environment)")
    return azurite.resolve_connection_string(value)


class Host:
    def __init__(self, loaded: LoadedApp, options: HostOptions):
        self.loaded = loaded
        self.options = options
        self.store = Path(options.store or loaded.app_dir / ".devhost" / "taskhub.sqlite")
        self.key = resolve_key(loaded.app_dir, options.require_keys)
        self.routes = http_functions(loaded.functions)
        self.azurite: azurite.Azurite | None = None
        self.engine: Any = None
        self.server: HttpServer | None = None
        self.config = ServerConfig(route_prefix=loaded.host.route_prefix, key=self.key)
        self.invoker = Invoker(loaded.by_name(), self.client_binding, str(loaded.app_dir))
        self._stop_triggers = asyncio.Event()
        self._trigger_tasks: list[asyncio.Task] = []

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.options.bind in ("0.0.0.0", "") else self.options.bind
        return f"http://{host}:{self.config.public_port}"

    def client_binding(self) -> str:
        return client_binding_json(self.public_url, f"http://127.0.0.1:{self.config.rpc_port}",
                                   self.loaded.host.hub_name, key=self.key)

    async def start(self) -> None:
        # 1. storage
        self.start_storage()
        # 2. the durable engine
        from devhost.durable import DurableEngine, Registry

        self.store.parent.mkdir(parents=True, exist_ok=True)
        host = self.loaded.host
        self.engine = DurableEngine(
            Registry.from_functions(self.loaded.sdk_functions), self.store,
            max_activities=host.max_concurrent_activities, max_orchestrators=host.max_concurrent_orchestrators,
            task_hub=host.hub_name)
        await self.engine.start()
        # 3. the web server
        management = ManagementApi(self.engine, host.hub_name, lambda: self.key)
        app = build_app(self.config, self.routes, self.invoker, management)
        self.server = HttpServer(app, self.config, self.options.bind)
        await self.server.start(self.options.port, self.options.rpc_port)
        if self.key is None and self.options.bind not in ("127.0.0.1", "localhost", "::1"):
            log.warning("listening on %s with keys off: anyone who can reach this port can call every "
                        "function and the management API (use --require-keys)", self.options.bind)
        # 4. blob, timer and queue triggers
        self.start_triggers()

    def start_storage(self) -> None:
        value = os.environ.get(STORAGE_SETTING, "")
        if azurite.resolve_connection_string(value) != value:  # UseDevelopmentStorage=true
            if not azurite.is_listening("127.0.0.1", 10000):
                log.info("starting Azurite for UseDevelopmentStorage=true")
            self.azurite = azurite.ensure_azurite(self.loaded.app_dir / ".devhost" / "azurite")
        elif not value:
            log.warning("%s is not set: blob triggers and the app's storage calls will fail", STORAGE_SETTING)

    def functions_of(self, trigger_type: str) -> list[tuple[str, dict]]:
        return [(info.name, info.trigger) for info in self.loaded.functions if info.trigger_type == trigger_type]

    def start_triggers(self) -> None:
        blobs, timers = self.functions_of("blobTrigger"), self.functions_of("timerTrigger")
        queues = self.functions_of("queueTrigger")
        if blobs:
            from devhost.blob_triggers import BlobTriggerPoller

            with _naming(blobs, "blob"):
                poller = BlobTriggerPoller(functions=blobs, get_connection=storage_connection, invoke=self.invoker)
            self._trigger_tasks.append(asyncio.create_task(poller.run(self._stop_triggers), name="blob-triggers"))
        if timers:
            from devhost.timer_triggers import TimerScheduler

            with _naming(timers, "timer"):
                scheduler = TimerScheduler(functions=timers, state_dir=self.store.parent / "timers",
                                           invoke=self.invoker)
            self._trigger_tasks.append(asyncio.create_task(scheduler.run(self._stop_triggers),
                                                           name="timer-triggers"))
        if queues:
            from devhost.queue_triggers import QueueTriggerPoller

            with _naming(queues, "queue"):
                queue_poller = QueueTriggerPoller(functions=queues, get_connection=storage_connection,
                                                  invoke=self.invoker,
                                                  encoding=self.loaded.host.queue_message_encoding,
                                                  batch_size=self.loaded.host.queue_batch_size)
            self.engine.after_activities = queue_poller.wake
            self._trigger_tasks.append(asyncio.create_task(queue_poller.run(self._stop_triggers),
                                                           name="queue-triggers"))
        for task in self._trigger_tasks:
            task.add_done_callback(_report_trigger_end)

    async def stop(self) -> None:
        """Reverse order; every step is attempted even when one before it failed."""
        self._stop_triggers.set()
        steps = [self._stop_trigger_tasks, self._stop_server, self._stop_engine, self._close_client_session]
        for step in steps:
            try:
                log.debug("stopping: %s", step.__name__)
                await step()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("while stopping: %s failed", step.__name__)
        if self.azurite is not None:
            self.azurite.stop()  # a no-op when we reused one that was already running

    async def _stop_trigger_tasks(self) -> None:
        if not self._trigger_tasks:
            return
        _, pending = await asyncio.wait(self._trigger_tasks, timeout=10)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _stop_server(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def _stop_engine(self) -> None:
        if self.engine is not None:
            await self.engine.stop()

    async def _close_client_session(self) -> None:
        # The SDK keeps one module-global aiohttp session for its client; close it on our loop.
        from azure.durable_functions.models.utils import http_utils

        await http_utils._close_session()

    def describe(self) -> list[str]:
        """One line per function, as `func start` prints them."""
        prefix = f"/{self.config.route_prefix}" if self.config.route_prefix else ""
        lines = []
        for route in self.routes:
            methods = ",".join(route.methods)
            lines.append(f"{route.name}: [{methods}] {self.public_url}{prefix}/{route.route.template}")
        for info in self.loaded.functions:
            if info.trigger_type != "httpTrigger":
                lines.append(f"{info.name}: {info.trigger_type}")
        return sorted(lines, key=str.lower)  # `func start` lists functions by name


@contextlib.contextmanager
def _naming(functions: list[tuple[str, dict]], kind: str):
    """Say which functions a trigger set-up failure is about (the SDK's messages do not)."""
    try:
        yield
    except Exception as problem:
        names = ", ".join(name for name, _ in functions)
        raise RuntimeError(f"{kind} triggers of {names} could not start: {problem}") from problem


def _report_trigger_end(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())
