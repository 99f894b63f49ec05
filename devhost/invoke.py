"""Call one user function with its trigger input plus its other bindings, as the Python worker does.

`Invoker.invoke(name, trigger_kwargs)` adds the `durableClient` binding JSON, `func.Out` objects
for output bindings and a `context` when the function asks for one, then runs the function:
`async` functions on the host's one event loop (the SDK client keeps a module-global aiohttp
session bound to it), plain functions in a worker thread so they cannot block the loop.
Whatever the function raises comes back as `FunctionFailed`; it never escapes to crash the host.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import azure.functions as func

from devhost.app_loader import FunctionInfo

log = logging.getLogger("devhost.invoke")

# Input bindings devhost fills in besides the trigger; any other input binding is refused by name.
SUPPORTED_INPUTS = {"durableClient"}
OUT = 1  # `BindingDirection.OUT` once binding dicts are made plain (see app_loader.plain)


class FunctionFailed(Exception):
    """A user function raised; `error` is what it raised, `details` its traceback."""

    def __init__(self, function_name: str, error: BaseException, details: str = ""):
        self.function_name = function_name
        self.error = error
        self.details = details
        super().__init__(f"function `{function_name}` failed: {type(error).__name__}: {error}")


class OutValue(func.Out):
    """The object behind a `func.Out[...]` parameter: holds what the function `set()`."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class InvocationContext(func.Context):
    """What `context: func.Context` gives a function under devhost."""

    def __init__(self, function_name: str, function_directory: str):
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def thread_local_storage(self):
        return self._thread_local

    @property
    def trace_context(self):
        return None

    @property
    def retry_context(self):
        return None


@dataclass
class Invocation:
    """What a function produced: its return value and what it set on each output binding."""

    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)


class Invoker:
    """Runs the app's trigger functions (HTTP, blob, timer, queue); the engine runs orchestrators and activities."""

    def __init__(self, functions: dict[str, FunctionInfo], client_binding: Callable[[], str],
                 function_directory: str = ""):
        self._functions = functions
        self._client_binding = client_binding
        self._function_directory = function_directory

    def function(self, name: str) -> FunctionInfo:
        try:
            return self._functions[name]
        except KeyError:
            raise KeyError(f"no function named `{name}` in the app") from None

    def build_kwargs(self, info: FunctionInfo, trigger_kwargs: dict[str, Any]) -> tuple[dict, dict]:
        """The keyword arguments for one call, and the `OutValue`s to read back after it."""
        kwargs: dict[str, Any] = {}
        outputs: dict[str, OutValue] = {}
        parameters = inspect.signature(info.user_function).parameters
        for binding in info.bindings:
            name = cast(str, binding.get("name"))  # every binding in function.json is named
            if binding == info.trigger or name == "$return":
                continue
            if binding.get("direction") == OUT:
                outputs[name] = OutValue()
                kwargs[name] = outputs[name]
            elif binding.get("type") in SUPPORTED_INPUTS:
                kwargs[name] = self._client_binding()
            else:
                raise FunctionFailed(info.name, NotImplementedError(
                    f"input binding `{name}` of type `{binding.get('type')}` is not supported by devhost"))
        kwargs.update(trigger_kwargs)
        if "context" in parameters and "context" not in kwargs:
            kwargs["context"] = InvocationContext(info.name, self._function_directory)
        return kwargs, outputs

    async def invoke(self, function_name: str, trigger_kwargs: dict[str, Any]) -> Invocation:
        info = self.function(function_name)
        kwargs, outputs = self.build_kwargs(info, trigger_kwargs)
        try:
            if info.is_async:
                result = await info.user_function(**kwargs)
            else:
                result = await asyncio.to_thread(info.user_function, **kwargs)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - SystemExit from user code must not stop the host
            details = traceback.format_exc()
            log.error("function %s failed:\n%s", function_name, details)
            raise FunctionFailed(function_name, error, details) from None
        return Invocation(result=result, outputs={name: out.get() for name, out in outputs.items()})

    async def __call__(self, function_name: str, trigger_kwargs: dict[str, Any]) -> None:
        """The `invoke` callable handed to the blob, timer and queue triggers (they count failures)."""
        await self.invoke(function_name, trigger_kwargs)
