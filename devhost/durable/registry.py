"""Which orchestrators and activities an app has, and how an activity is called.

`Registry.from_functions(app.get_functions())` indexes every orchestrator and activity
under each name the SDK may send for it: the function name (`@function_name`), the
trigger's `orchestration` / `activity` attribute, and the Python `__name__`
(`context.call_activity(fn_object)` sends that one).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter


@dataclass
class Registry:
    orchestrators: dict[str, Callable[[str], str]] = field(default_factory=dict)
    activities: dict[str, tuple[Callable, str]] = field(default_factory=dict)

    @classmethod
    def from_functions(cls, functions) -> "Registry":
        registry = cls()
        later: list[tuple[dict[str, Any], str | None, Any]] = []   # __name__ aliases, added only where free
        for function in functions:
            trigger = function.get_trigger()
            if trigger is None:
                continue
            binding = trigger.get_dict_repr()
            user_function = function.get_user_function()
            table: dict[str, Any]  # registry.orchestrators or registry.activities
            value: Any
            if trigger.type == "orchestrationTrigger":
                table, value = registry.orchestrators, user_function
                names = [function.get_function_name(), binding.get("orchestration")]
                inner = getattr(user_function, "orchestrator_function", user_function)
            elif trigger.type == "activityTrigger":
                table, value = registry.activities, (user_function, binding["name"])
                names = [function.get_function_name(), binding.get("activity")]
                inner = user_function
            else:
                continue
            for name in names:
                if name:
                    table[name] = value
            later.append((table, getattr(inner, "__name__", None), value))
        for table, name, value in later:
            if name and name not in table:
                table[name] = value
        return registry


def decode_activity_input(input_json: str | None) -> Any:
    """The value the Functions worker would pass: JSON decoded, or the raw text if not JSON."""
    return ActivityTriggerConverter.decode(meta.Datum(type="string", value=input_json or "null"),
                                           trigger_metadata=None)


def encode_activity_output(result: Any) -> str:
    """The JSON text the worker would return for the activity's result."""
    return ActivityTriggerConverter.encode(result, expected_type=None).value


def failure_reason(name: str, exc: BaseException) -> tuple[str, str]:
    """(Reason, Details) for a failed activity; the orchestrator sees `f"{Reason} \\n {Details}"`."""
    # Only the user's frames: the engine's and the thread pool's say nothing useful.
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "devhost/durable" not in f.filename and "concurrent/futures" not in f.filename]
    details = "".join(traceback.format_list(frames[-5:]))
    return f"Activity function '{name}' failed: {type(exc).__name__}: {exc}", details
