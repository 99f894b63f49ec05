"""Load a Functions app the way the Python worker does: settings, host.json, then `function_app.py`.

`load_app(app_dir)` returns a `LoadedApp`: the module-level `app`, the functions it declares
(indexed once: `get_functions()` raises on a second call), the parsed host.json, and the few
host.json values devhost uses. Nothing here knows about HTTP or the durable engine.
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class AppLoadError(Exception):
    """The app could not be loaded; `detail` is what a person needs to fix it (maybe a traceback)."""

    def __init__(self, message: str, detail: str = ""):
        self.detail = detail
        super().__init__(message)


@dataclass(frozen=True)
class FunctionInfo:
    """One function of the app: its name, trigger, other bindings and the callable to run."""

    name: str
    trigger_type: str  # "httpTrigger", "blobTrigger", "orchestrationTrigger", ...
    trigger: dict  # the trigger binding, as function.json would hold it
    bindings: tuple[dict, ...]  # every binding, trigger included
    user_function: Callable[..., Any]
    is_async: bool
    function: Any = field(repr=False, compare=False)  # the SDK's `Function` object

    def bindings_of_type(self, binding_type: str) -> list[dict]:
        return [b for b in self.bindings if b.get("type") == binding_type]


@dataclass(frozen=True)
class HostConfig:
    """The host.json values devhost acts on (all others are kept in `raw` and ignored)."""

    raw: dict
    route_prefix: str = "api"
    hub_name: str = "TestHubName"
    max_concurrent_activities: int = 10
    max_concurrent_orchestrators: int = 10
    queue_message_encoding: str = "base64"  # extensions.queues.messageEncoding
    queue_batch_size: int = 16  # extensions.queues.batchSize


@dataclass
class LoadedApp:
    app_dir: Path
    app: Any
    functions: list[FunctionInfo]
    host: HostConfig
    settings_applied: dict[str, str]  # local.settings.json Values that were put into os.environ

    @property
    def sdk_functions(self) -> list[Any]:
        """The SDK `Function` objects, for `Registry.from_functions`."""
        return [info.function for info in self.functions]

    def by_name(self) -> dict[str, FunctionInfo]:
        return {info.name: info for info in self.functions}


def plain(value: Any) -> Any:
    """Binding dicts hold enums (`AuthLevel.FUNCTION`, `HttpMethod.GET`): turn them into their strings."""
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def apply_local_settings(app_dir: Path) -> dict[str, str]:
    """Put local.settings.json `Values` into os.environ, never overriding what is already set.

    Like Core Tools: the environment wins, so a test or a shell can point the app elsewhere.
    """
    path = app_dir / "local.settings.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AppLoadError(f"{path} is not valid JSON: {error}") from None
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise AppLoadError(f"`Values` in {path} must be an object, got {type(values).__name__}")
    applied = {}
    for name, value in values.items():
        if name not in os.environ:
            os.environ[name] = str(value)
            applied[name] = str(value)
    return applied


def read_host_json(app_dir: Path) -> HostConfig:
    path = app_dir / "host.json"
    raw: dict = {}
    if path.exists():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise AppLoadError(f"{path} is not valid JSON: {error}") from None
    extensions = raw.get("extensions") or {}
    http = extensions.get("http") or {}
    durable = extensions.get("durableTask") or {}
    queues = extensions.get("queues") or {}
    route_prefix = http.get("routePrefix", "api")
    if not isinstance(route_prefix, str):
        raise AppLoadError(f"`extensions.http.routePrefix` in {path} must be a string, got {route_prefix!r}")
    encoding = str(queues.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise AppLoadError(f"`extensions.queues.messageEncoding` in {path} must be `base64` or `none`, "
                           f"got {queues.get('messageEncoding')!r}")
    return HostConfig(
        raw=raw,
        route_prefix=route_prefix.strip("/"),
        hub_name=str(durable.get("hubName") or "TestHubName"),
        max_concurrent_activities=_positive(durable, "maxConcurrentActivityFunctions", 10, path),
        max_concurrent_orchestrators=_positive(durable, "maxConcurrentOrchestratorFunctions", 10, path),
        queue_message_encoding=encoding,
        queue_batch_size=_positive(queues, "batchSize", 16, path, section_name="queues", most=32),
    )


def _positive(section: dict, key: str, default: int, path: Path, *, section_name: str = "durableTask",
              most: int | None = None) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (most is not None and value > most):
        limit = f"from 1 to {most}" if most is not None else ">= 1"
        raise AppLoadError(f"`extensions.{section_name}.{key}` in {path} must be a whole number {limit}, got {value!r}")
    return value


def import_function_app(app_dir: Path) -> Any:
    """Import DIR/function_app.py with DIR on sys.path (the script root, as the worker does)."""
    path = app_dir / "function_app.py"
    if not path.exists():
        raise AppLoadError(f"no function_app.py in {app_dir}")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location("function_app", path)
    assert spec is not None and spec.loader is not None  # a .py file always gets a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # noqa: BLE001 - any failure of user code is a load error
        import traceback

        sys.modules.pop("function_app", None)
        raise AppLoadError(
            f"importing {path} failed: {type(error).__name__}: {error}", traceback.format_exc()
        ) from None
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        raise AppLoadError(f"{path} must define a module-level `app` (func.FunctionApp or df.DFApp)")
    return app


def index_functions(app: Any) -> list[FunctionInfo]:
    """Call `app.get_functions()` once and describe each function."""
    try:
        functions = app.get_functions()
    except Exception as error:  # the SDK validates names and bindings here
        raise AppLoadError(f"indexing the app's functions failed: {error}") from None
    infos = []
    for function in functions:
        bindings = tuple(plain(binding.get_dict_repr()) for binding in function.get_bindings())
        trigger = plain(function.get_trigger().get_dict_repr())
        user_function = function.get_user_function()
        infos.append(FunctionInfo(
            name=function.get_function_name(),
            trigger_type=trigger["type"],
            trigger=trigger,
            bindings=bindings,
            user_function=user_function,
            is_async=inspect.iscoroutinefunction(user_function),
            function=function,
        ))
    return infos


def load_app(app_dir: str | Path) -> LoadedApp:
    """Settings first (the app may read them at import), then host.json, then the app itself."""
    app_dir = Path(app_dir).resolve()
    if not app_dir.is_dir():
        raise AppLoadError(f"--app-dir {app_dir} is not a directory")
    applied = apply_local_settings(app_dir)
    host = read_host_json(app_dir)
    app = import_function_app(app_dir)
    return LoadedApp(app_dir=app_dir, app=app, functions=index_functions(app), host=host,
                     settings_applied=applied)
