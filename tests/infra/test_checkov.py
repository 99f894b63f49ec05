"""checkov over the Bicep templates and the Dockerfile: zero failed checks.

A check may only be suppressed inline (`//checkov:skip=ID:reason` in Bicep,
`#checkov:skip=ID:reason` in the Dockerfile) with a reason a reviewer can judge, and only
where checkov really reports that check as skipped, so no suppression outlives its cause.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.deployfiles import INFRA, ROOT

CHECKOV = Path(sys.executable).with_name("checkov")
SKIP_COMMENT = re.compile(r"(?://|#)\s*checkov:skip=(CKV\w+)(?::(.*))?")


def run_checkov(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    # --skip-download: checkov otherwise fetches guideline mappings from the network.
    return subprocess.Popen(
        [str(CHECKOV), *args, "--output", "json", "--skip-download"],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def report(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert stdout.strip(), f"checkov printed nothing (exit {process.returncode}): {stderr[-2000:]}"
    data = json.loads(stdout)
    # One framework gives one report; checkov prints a list only for several.
    return data[0] if isinstance(data, list) else data


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    """Both scans, run side by side (the slow part of this module)."""
    bicep = run_checkov("--directory", str(INFRA), "--framework", "bicep")
    docker = run_checkov("--file", str(ROOT / "Dockerfile"), "--framework", "dockerfile")
    return {"bicep": report(bicep), "dockerfile": report(docker)}


def describe(failed: list[dict]) -> str:
    return "\n".join(
        f"  {item['check_id']} {item['check_name']} — {item['resource']} in {item['file_path']}:"
        f"{item['file_line_range'][0]}" for item in failed
    )


@pytest.mark.parametrize("framework", ["bicep", "dockerfile"])
def test_no_failed_checks(reports, framework):
    result = reports[framework]
    summary = result["summary"]
    failed = result["results"].get("failed_checks", [])
    assert summary["parsing_errors"] == 0, f"checkov could not parse some {framework} files"
    assert not failed, f"{len(failed)} checkov {framework} checks failed:\n{describe(failed)}"
    # Guards against a scan that silently looked at nothing.
    assert summary["passed"] >= 10, f"checkov {framework} passed only {summary['passed']} checks"


def test_every_suppression_has_a_reason_and_is_used(reports):
    skipped = {
        (Path(item["file_path"]).name, item["check_id"])
        for result in reports.values() for item in result["results"].get("skipped_checks", [])
    }
    files = sorted(INFRA.rglob("*.bicep")) + [ROOT / "Dockerfile"]
    problems = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if not match:
                continue
            check_id, reason = match.group(1), (match.group(2) or "").strip()
            where = f"{path.relative_to(ROOT)}:{number} {check_id}"
            if len(reason.split()) < 8:
                problems.append(f"{where}: the reason must say why, in a sentence; got {reason!r}")
            if (path.name, check_id) not in skipped:
                problems.append(f"{where}: checkov reports no such skip here; remove the stale suppression")
    assert not problems, "\n".join(problems)


def test_checkov_catches_a_dockerfile_without_user_or_healthcheck(tmp_path):
    # The gate itself: a Dockerfile running as root with no HEALTHCHECK must fail.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM mcr.microsoft.com/azure-functions/python:4-python3.11-slim\nCOPY . /home/site/wwwroot\n")
    result = report(run_checkov("--file", str(bad), "--framework", "dockerfile", cwd=tmp_path))
    failed = {item["check_id"] for item in result["results"].get("failed_checks", [])}
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3"} <= failed, f"checkov failed only {sorted(failed)}"
