"""Following a job until it reaches a state: `wait` (quiet), `watch` (a progress bar on a
terminal, a line per change elsewhere, JSON lines with `--json`) and `submit --wait`.

`follow` asks the API for the job every `interval` seconds and calls `on_change` with it
each time what a user sees changes (its status, progress or summary, not the time of the
last update), so a display shows each change once.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imagegen.cli.api import CALL_TIMEOUT, Api
from imagegen.cli.exits import CliError
from imagegen.cli.job_lines import progress_line, summary_line
from imagegen.core.types import ENDED_STATES

OnChange = Callable[[dict], None]
ENDED = ENDED_STATES
# Where `submit --wait` stops following a job: it ended, or it waits for people.
SETTLED = ENDED | {"awaiting_review"}
# Fields of a job that change on every poll without anything happening to it.
UNSEEN = ("lastUpdatedTime",)


def follow(api: Api, job_id: str, *, until: frozenset[str], on_change: OnChange, interval: float = 1.0,
           timeout: float | None = None) -> dict:
    """The job once its status is in `until`; a `CliError` naming the job when `timeout`
    seconds pass first (then each call to the API may take only what is left of them)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    while True:
        job = api.job(job_id, timeout=call_timeout(deadline))
        visible = {k: v for k, v in job.items() if k not in UNSEEN}
        if visible != seen:
            on_change(job)
            seen = visible
        if job["status"] in until:
            return job
        if deadline is not None and time.monotonic() >= deadline:
            raise CliError(f"job {job_id} is still {job['status']} after {timeout:g}s: wait longer with --timeout, "
                           f"or look later with `imagegen status {job_id}`")
        time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))


def call_timeout(deadline: float | None) -> float:
    """How long the next call may take: what is left before `deadline`, at least half a second."""
    if deadline is None:
        return CALL_TIMEOUT
    return max(0.5, min(CALL_TIMEOUT, deadline - time.monotonic()))


# -- displays: what to show at each change ------------------------------------------------

def quietly(job: dict) -> None:
    """`imagegen wait`: nothing until the end."""


def text_lines(stream: TextIO) -> OnChange:
    """A line per change: '<id>: running (2 ok) [generating: 2/8]'."""
    def show(job: dict) -> None:
        print(progress_line(job), file=stream, flush=True)
    return show


def json_lines(stream: TextIO) -> OnChange:
    """The job as the API answered it, one JSON object a line, per change."""
    def show(job: dict) -> None:
        print(json.dumps(job, separators=(",", ":")), file=stream, flush=True)
    return show


@contextmanager
def progress_bar(job_id: str, console: Console) -> Iterator[OnChange]:
    """A live progress bar on the terminal: status, phase, images done of all, time taken."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(escape(job_id), total=None)

        def show(job: dict) -> None:
            progress: dict = job["progress"] if isinstance(job.get("progress"), dict) else {}
            description = escape(f"{job_id} [{job['status']}] {progress.get('phase', '')}".rstrip())
            if job.get("summary"):  # ended: no progress any more, the bar stays full
                bar.update(task, completed=bar.tasks[0].total or 0, description=description)
            else:
                bar.update(task, total=progress.get("total") or None, completed=progress.get("done", 0),
                           description=description)
        yield show


def follow_with_progress(api: Api, job_id: str, until: frozenset[str] = SETTLED, interval: float = 1.0,
                         timeout: float | None = None) -> dict:
    """Follow a job until its status is in `until`, showing its progress on stderr: a bar
    on a terminal, then the summary line; elsewhere a line per change, the last the summary."""
    console = Console(stderr=True)
    if not console.is_terminal:
        return follow(api, job_id, until=until, on_change=text_lines(sys.stderr), interval=interval, timeout=timeout)
    with progress_bar(job_id, console) as show:
        job = follow(api, job_id, until=until, on_change=show, interval=interval, timeout=timeout)
    console.print(summary_line(job), markup=False, highlight=False, soft_wrap=True)
    return job
