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
# `imagegen`'s own floors, lowest first: a subpackage imports only its own floor and those
# below it. Subpackages on one floor do not import each other.
IMAGEGEN_FLOORS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("jobs",),
    ("records",),
    ("storage", "generation"),
    ("checks",),
    ("service",),
    ("cli", "gallery_pages"),
)
# The most modules `imagegen/` keeps at its top level (the rest live in the floors).
MOST_TOP_LEVEL_MODULES = 4
# What orchestrator code may import (they replay: no I/O, clock, randomness or GPU), even
# through another module: an allow-list, so a new import has to be judged before it lands.
REPLAY_SAFE_PACKAGES = ("orchestrations", "imagegen.core.types", "imagegen.core.field_errors",
                        "imagegen.core.limits", "imagegen.core.documents", "imagegen.core.nesting",
                        "imagegen.core.storable_text", "imagegen.core.blob_names", "imagegen.jobs.spec",
                        "imagegen.jobs.variants", "imagegen.records")
REPLAY_SAFE_EXTERNAL = ("__future__", "typing", "collections", "dataclasses", "datetime", "enum", "functools",
                        "itertools", "math", "re", "json", "hashlib", "string", "pydantic", "azure.durable_functions",
                        "yaml", "annotated_types", "pydantic_core", "difflib", "types", "urllib.parse")


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
    tree = ast.parse(path.read_text(), str(path))
    # Imports under `if TYPE_CHECKING:` never run: they are for the type checker alone.
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                 for statement in block.body for node in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
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


def replay_safe(module: str) -> bool:
    return module == "imagegen" or any(module == name or module.startswith(name + ".") for name in REPLAY_SAFE_PACKAGES)


def test_orchestrators_reach_only_replay_safe_modules():
    for name in (m for m in MODULES if top(m) == "orchestrations"):
        chains = reachable(name)
        bad = [" -> ".join(chains[m]) for m in chains if not replay_safe(m)]
        assert not bad, "an orchestrator replays; it must not reach I/O, clocks or the GPU:\n" + "\n".join(bad)
        external = [f"{imp.where}: {imp.source} imports {imp.target}" for imp in IMPORTS
                    if imp.source in chains and imp.target not in MODULES
                    and not any(imp.target == ok or imp.target.startswith(ok + ".") for ok in REPLAY_SAFE_EXTERNAL)]
        assert not external, ("orchestrator code imports a library not on the replay-safe list (add it to "
                              "REPLAY_SAFE_EXTERNAL only if it does no I/O and reads no clock):\n" + "\n".join(external))


def floor(module: str) -> int | None:
    """The floor of an `imagegen` subpackage module; None for the top level."""
    parts = module.split(".")
    if parts[0] != "imagegen" or len(parts) < 2:
        return None
    return next((i for i, names in enumerate(IMAGEGEN_FLOORS) if parts[1] in names), None)


def test_imagegen_is_only_floors_and_a_few_top_level_modules():
    top_level = sorted(p.name for p in (ROOT / "imagegen").glob("*.py"))
    assert len(top_level) <= MOST_TOP_LEVEL_MODULES, f"imagegen/ has {len(top_level)} modules at its top: {top_level}"
    packages = sorted(p.parent.name for p in (ROOT / "imagegen").glob("*/__init__.py"))
    assert packages == sorted(name for names in IMAGEGEN_FLOORS for name in names), (
        f"every subpackage of imagegen/ has a floor in IMAGEGEN_FLOORS (and docs/architecture.md): {packages}")


def test_imagegen_imports_only_its_own_floor_and_below():
    upward = []
    for imp in OURS:
        source, target = floor(imp.source), floor(imp.target)
        if source is None or target is None:
            continue
        same_package = imp.source.split(".")[1] == imp.target.split(".")[1]
        if target > source or (target == source and not same_package):
            upward.append(f"{imp.where}: {imp.source} (floor {source}) imports {imp.target} (floor {target})")
    assert not upward, "imports against imagegen's floors (docs/architecture.md):\n" + "\n".join(upward)


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
    assert any(imp.source.startswith("orchestrations") and imp.target == "imagegen.records.messages" for imp in OURS)
