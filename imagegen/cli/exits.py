"""What `imagegen` exits with, and the one line it prints when something goes wrong.

    0    done: the job completed (or, for `status`, has not ended yet; `submit --wait`
         also stops here when the job awaits review)
    1    an error: a missing setting, an unreachable app, a bad or missing file, a timeout,
         a problem the API answered (4xx/5xx)
    2    usage: a bad option or argument
    3    the job ended `partial`: some images were made, some failed or were blocked
    4    the job ended `rejected`, `failed` or `cancelled`
    130  interrupted (Ctrl-C)

Every error is one line on stderr that says what went wrong and what to do about it; no
traceback reaches a user (`IMAGEGEN_DEBUG=1` shows the traceback of an unexpected one).
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    FAILED = 4
    INTERRUPTED = 130


# The job's final state → the exit code; states that have not ended (queued, running,
# awaiting_review) exit OK.
JOB_EXITS = {"completed": Exit.OK, "partial": Exit.PARTIAL, "rejected": Exit.FAILED,
             "failed": Exit.FAILED, "cancelled": Exit.FAILED}


def job_exit(status: str) -> Exit:
    """The exit code for a job in `status`."""
    return JOB_EXITS.get(status, Exit.OK)


class CliError(Exception):
    """Something went wrong that the user can act on: `message` is one line saying what,
    and what to do; `code` is what the command exits with."""

    def __init__(self, message: str, code: Exit = Exit.ERROR):
        self.code = code
        super().__init__(one_line(message))


def one_line(text: str, most: int = 2000) -> str:
    """`text` with its line breaks and runs of spaces made single spaces, cut at `most`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def file_error(path: Path, error: OSError, doing: str = "read") -> CliError:
    """An OSError on a file the user named, in words: which file, what is wrong, what to do."""
    if isinstance(error, FileNotFoundError):
        return CliError(f"no such file: {path}: check the path")
    if isinstance(error, IsADirectoryError):
        return CliError(f"{path} is a folder: name a file in it")
    if isinstance(error, PermissionError):
        return CliError(f"cannot {doing} {path}: permission denied")
    return CliError(f"cannot {doing} {path}: {error.strerror or error}")
