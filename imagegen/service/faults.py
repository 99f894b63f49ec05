"""Fault injection for the end-to-end tests and for rehearsing incidents. Unset in production.

`IMAGEGEN_FAULTS` holds `pattern=mode` pairs; a job whose id matches the pattern:

- `fail-once`: fails in generate_images on its first attempt per batch;
- `fail-always`: fails in generate_images on every attempt;
- `fail-check-once`: its first output check fails (the job's other checks run);
- `fail-sign`: signing each of its images fails, as when Key Vault is down.

What has failed once is remembered per process: the host's, which decides for the output
checks too before handing them to a checker process (`imagegen.checks.output_checks`).
"""

from __future__ import annotations

import fnmatch
import threading

from imagegen.core.settings import Settings
from imagegen.core.types import SigningFailed
from imagegen.records.messages import BatchRequest

_failed_once: set[tuple[str, str]] = set()
_lock = threading.Lock()


def _first_time(key: tuple[str, str]) -> bool:
    with _lock:
        first = key not in _failed_once
        _failed_once.add(key)
        return first


def inject_fault(render: BatchRequest, settings: Settings | None = None) -> None:
    for pattern, mode in (settings or Settings.from_env()).faults.items():
        if not fnmatch.fnmatchcase(render.job_id, pattern):
            continue
        first_time = _first_time((render.job_id, render.batch.id))
        if mode == "fail-always" or (mode == "fail-once" and first_time):
            raise RuntimeError(f"injected fault ({mode}) for job {render.job_id} batch {render.batch.id}")


def inject_check_fault(job_id: str, what: str, settings: Settings | None = None) -> None:
    for pattern, mode in (settings or Settings.from_env()).faults.items():
        if mode == "fail-check-once" and fnmatch.fnmatchcase(job_id, pattern) and _first_time((job_id, "check")):
            raise RuntimeError(f"injected fault ({mode}) checking {what}")


def inject_sign_fault(job_id: str, settings: Settings | None = None) -> None:
    for pattern, mode in (settings or Settings.from_env()).faults.items():
        if mode == "fail-sign" and fnmatch.fnmatchcase(job_id, pattern):
            raise SigningFailed(f"injected fault ({mode}) for job {job_id}")
