"""`pip install .` gives a working `imagegen` CLI without torch or diffusers.

The CLI is a thin HTTP client: installed with only the dependencies pyproject
declares for it (the app's own are the `app` extra), `--version` and `status`
against a running API must work in a fresh virtual environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import tomllib
import venv
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

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
def cli(tmp_path_factory) -> Path:
    """`imagegen` installed in a fresh venv: the wheel without deps, then its declared deps."""
    where = tmp_path_factory.mktemp("cli-venv")
    venv.create(where / "venv", with_pip=True)
    python = where / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(where / "dist"), str(ROOT)], check=True)
    wheel = next((where / "dist").glob("durable_diffusion-*.whl"))
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
