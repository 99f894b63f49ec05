"""Side effects the tests can observe from outside the host: one line per key in a file."""

import fcntl
import os
from pathlib import Path


def effects_dir() -> Path:
    path = Path(os.environ.get("SAMPLE_EFFECTS_DIR", ".devhost/effects"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def record_once(run: str, key: str) -> bool:
    """Append `key` to the run's file unless it is there already (an activity may run twice)."""
    path = effects_dir() / f"{run}.txt"
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        if key in handle.read().splitlines():
            return False
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        return True


def count_attempt(name: str) -> int:
    """How many times this has been called before, plus one (survives across calls)."""
    path = effects_dir() / f"{name}.attempts"
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("x")
        handle.flush()
        handle.seek(0)
        return len(handle.read())
