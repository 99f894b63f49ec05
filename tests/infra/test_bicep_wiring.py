"""What a Bicep compiler would refuse in how the templates fit together, checked without one.

No registry this project can reach serves a Bicep compiler (docs/deploy.md, "Notes and
limits"), so `bicep build` cannot run in `make test`. These checks read every Bicep file
with checkov's parser (tests/infra/deployfiles.py) and hold the seams `bicep build` would:
every module file exists and is used, each module call passes only parameters the module
declares and every one it requires, `module.outputs.X` names an output the module has, and
a value handed straight through keeps to the `@allowed` list on both sides.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.deployfiles import INFRA


def module_calls(bicep: dict) -> list[tuple[str, str, str, dict]]:
    """(calling file, symbolic name, module file relative to infra/, params) of every module call."""
    calls = []
    for caller, template in bicep.items():
        for symbol, module in (template.get("modules") or {}).items():
            config = module["config"]
            config = config.get("config", config)  # a conditional module: `= if (...) {...}`
            folder = str((INFRA / caller).parent.relative_to(INFRA))
            path = module["detail"]["path"] if folder == "." else f"{folder}/{module['detail']['path']}"
            calls.append((caller, symbol, path, config.get("params") or {}))
    return calls


def allowed(parameter: dict) -> list | None:
    return next((d["argument"] for d in parameter.get("decorators", []) if d["type"] == "allowed"), None)


def test_every_bicep_file_is_parsed_and_every_module_file_is_used(bicep):
    files = {str(path.relative_to(INFRA)) for path in INFRA.rglob("*.bicep")}
    assert set(bicep) == files
    used = {path for _, _, path, _ in module_calls(bicep)}
    assert used == files - {"main.bicep"}, f"unused: {sorted(files - used - {'main.bicep'})}, missing: {sorted(used - files)}"


def test_each_module_call_passes_exactly_the_parameters_the_module_declares_and_requires(bicep):
    problems = []
    for caller, symbol, path, params in module_calls(bicep):
        declared = bicep[path]["parameters"]
        problems += [f"{caller}: module `{symbol}` passes `{name}`, which {path} does not declare"
                     for name in params if name not in declared]
        problems += [f"{caller}: module `{symbol}` does not pass `{name}`, which {path} requires (no default)"
                     for name, parameter in declared.items() if parameter.get("default") is None and name not in params]
    assert not problems, "\n".join(problems)


def test_every_module_output_a_file_reads_exists(bicep):
    problems = []
    for caller, template in bicep.items():
        text = (INFRA / caller).read_text()
        modules = {symbol: path for c, symbol, path, _ in module_calls(bicep) if c == caller}
        for symbol, output in set(re.findall(r"\b(\w+)\.outputs\.(\w+)", text)):
            if symbol not in modules:
                problems.append(f"{caller}: `{symbol}.outputs.{output}` names no module of this file")
            elif output not in (bicep[modules[symbol]].get("outputs") or {}):
                problems.append(f"{caller}: {modules[symbol]} has no output `{output}`")
    assert not problems, "\n".join(problems)


def test_a_parameter_handed_straight_through_keeps_to_the_allowed_values_on_both_sides(bicep):
    problems = []
    for caller, symbol, path, params in module_calls(bicep):
        outer, inner = bicep[caller]["parameters"], bicep[path]["parameters"]
        for name, value in params.items():
            if not isinstance(value, str) or value not in outer or name not in inner:
                continue  # not a bare reference to one of the caller's parameters
            theirs, ours = allowed(inner[name]), allowed(outer[value])
            if theirs is not None and (ours is None or not set(ours) <= set(theirs)):
                problems.append(f"{caller}: `{value}` ({ours or 'any value'}) reaches {path} `{name}`, which allows {theirs}")
            default = outer[value].get("default")
            if theirs is not None and isinstance(default, str) and default not in theirs:
                problems.append(f"{caller}: `{value}` defaults to {default!r}, which {path} `{name}` does not allow")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("broken, expected", [
    ({"passes": "noSuchParam"}, "does not declare"),
    ({"drops": "name"}, "requires (no default)"),
])
def test_the_parameter_check_catches_a_broken_call(bicep, broken, expected):
    """The check itself: a call that passes an unknown parameter or leaves out a required one."""
    calls = module_calls(bicep)
    caller, symbol, path, params = next(call for call in calls if call[2] == "modules/identity.bicep")
    params = dict(params)
    if "passes" in broken:
        params[broken["passes"]] = "x"
    else:
        params.pop(broken["drops"])
    copy = {**bicep, caller: {**bicep[caller], "modules": {symbol: {
        **bicep[caller]["modules"][symbol], "config": {**bicep[caller]["modules"][symbol]["config"], "params": params}}}}}
    with pytest.raises(AssertionError, match=re.escape(expected)):
        test_each_module_call_passes_exactly_the_parameters_the_module_declares_and_requires(copy)
