"""The real `imagegen` command, run from this checkout as a subprocess, the way a person runs it.

    done = imagegen("status", job_id, "--url", url)
    assert done.returncode == 3 and error_line(done.stderr) ...

`python -m imagegen.cli.main` is what the `imagegen` console script runs (pyproject's
[project.scripts]); PYTHONPATH puts this checkout first, and the CLI's own settings are
cleared from the environment so the machine's never reach a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGEGEN = [sys.executable, "-m", "imagegen.cli.main"]
CLI_SETTINGS = ("IMAGEGEN_URL", "IMAGEGEN_KEY", "IMAGEGEN_TOKEN", "IMAGEGEN_ENTRA_SCOPE", "IMAGEGEN_DEBUG",
                "AzureWebJobsStorage", "AzureWebJobsStorage__blobServiceUri")


def cli_env(**settings: str) -> dict[str, str]:
    """This environment without the CLI's settings, with `settings`, running this checkout's code."""
    env = {name: value for name, value in os.environ.items() if name not in CLI_SETTINGS}
    return env | {"PYTHONPATH": str(ROOT), "COLUMNS": "80"} | settings


def imagegen(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`imagegen ARGS` run to its end: its exit code, stdout and stderr."""
    return subprocess.run([*IMAGEGEN, *args], capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), cwd=ROOT)


def start_imagegen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`imagegen ARGS` started, not waited for."""
    return subprocess.Popen([*IMAGEGEN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or cli_env(), cwd=ROOT)


def error_line(stderr: str) -> str:
    """The one line a failed command printed; fails the test when it printed more, or a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]
