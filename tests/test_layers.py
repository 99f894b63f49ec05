"""The import layers, enforced: a module that imports upward, or round in a circle, fails here.

    function_app → triggers → orchestrations → activities → imagegen        devhost (alone)

Each layer imports only its own layer and the layers to its right. Besides:
- `imagegen/` never imports Azure Functions (`azure.functions`, `azure.durable_functions`);
- `devhost/` imports nothing of the app: it is a Functions host, it knows no images;
- no trigger (a module that registers functions: it makes a `Blueprint`) imports another;
  what triggers share lives in helper modules (`triggers/jobs.py`, `triggers/responses.py`, ...);
- orchestrators reach only pure `imagegen` modules (no storage, GPU, safety or telemetry),
  because they replay;
- no import cycles, counting imports inside functions too.

docs/architecture.md draws the same diagram.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("imagegen", "activities", "orchestrations", "triggers", "devhost")
# Left to right: each may import itself and what is to its right.
LAYERS = ("function_app", "triggers", "orchestrations", "activities", "imagegen")
# What an orchestrator must never reach, even through another module: I/O and the GPU.
NOT_REPLAY_SAFE = {
    "imagegen.storage", "imagegen.diffusion", "imagegen.operations", "imagegen.safety", "imagegen.provenance",
    "imagegen.telemetry", "imagegen.tiny_model", "imagegen.deepcache", "imagegen.keyvault_signer",
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (a module of ours, or the external name as written)
    where: str  # path:line


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    files = [ROOT / "function_app.py"] + [p for package in PACKAGES for p in (ROOT / package).rglob("*.py")]
    return {module_name(path): path for path in files}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [Import(name, alias.name, where) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one.
                sub = f"{module}.{alias.name}"
                found.append(Import(name, sub if sub in modules else module, where))
    return found


MODULES = our_modules()
IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path, MODULES)]
OURS = [imp for imp in IMPORTS if imp.target in MODULES and imp.target != imp.source]


def top(name: str) -> str:
    return name.split(".")[0]


def test_no_layer_imports_a_layer_above_it():
    upward = [
        f"{imp.where}: {imp.source} imports {imp.target}"
        for imp in OURS
        if top(imp.source) in LAYERS and top(imp.target) in LAYERS
        and LAYERS.index(top(imp.target)) < LAYERS.index(top(imp.source))
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_devhost_imports_nothing_of_the_app_and_the_app_nothing_of_devhost():
    crossing = [
        f"{imp.where}: {imp.source} imports {imp.target}"
        for imp in IMPORTS
        if (top(imp.source) == "devhost") != (top(imp.target) == "devhost")
        and top(imp.target) in (*LAYERS, "devhost")
    ]
    assert not crossing, "\n".join(crossing)


def test_imagegen_never_imports_azure_functions():
    found = [f"{imp.where}: {imp.source} imports {imp.target}" for imp in IMPORTS
             if top(imp.source) == "imagegen" and imp.target.startswith(("azure.functions", "azure.durable_functions"))]
    assert not found, "\n".join(found)


def is_trigger(name: str) -> bool:
    """A module of `triggers/` that registers functions (makes a blueprint), not a helper."""
    return top(name) == "triggers" and "Blueprint(" in MODULES[name].read_text()


def test_no_trigger_imports_another_trigger():
    assert sum(map(is_trigger, MODULES)) >= 5  # the HTTP API, Foundry, gallery, blob drop, schedules...
    found = [f"{imp.where}: {imp.source} imports {imp.target}" for imp in OURS
             if top(imp.source) == "triggers" and is_trigger(imp.target)]
    assert not found, "a trigger imports another; share code through a helper such as triggers/jobs.py:\n" + "\n".join(found)


def reachable(start: str) -> dict[str, list[str]]:
    """Every module of ours `start` imports, directly or not, with one chain to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for imp in OURS:
            if imp.source == current and imp.target not in chains:
                chains[imp.target] = chains[current] + [imp.target]
                todo.append(imp.target)
    return chains


def test_orchestrators_reach_only_replay_safe_modules():
    for name in (m for m in MODULES if top(m) == "orchestrations"):
        chains = reachable(name)
        bad = [" -> ".join(chains[m]) for m in chains if m in NOT_REPLAY_SAFE or any(
            m.startswith(prefix + ".") for prefix in NOT_REPLAY_SAFE)]
        assert not bad, "an orchestrator replays; it must not reach I/O or the GPU:\n" + "\n".join(bad)


def test_no_import_cycles():
    cycles = []
    for name in MODULES:
        chains = reachable(name)
        for imp in OURS:
            if imp.target == name and imp.source in chains and imp.source != name:
                cycles.append(" -> ".join(chains[imp.source] + [name]) + f"  ({imp.where})")
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_the_checks_see_the_code():
    # The tests above pass vacuously if the walk finds nothing: it must see every layer.
    assert {top(m) for m in MODULES} == {*LAYERS, "devhost"}
    assert any(imp.source == "function_app" and top(imp.target) == "triggers" for imp in OURS)
    assert any(imp.source.startswith("orchestrations") and imp.target == "imagegen.messages" for imp in OURS)
