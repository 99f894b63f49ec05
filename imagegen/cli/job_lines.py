"""A job in one line of text, as `status`, `wait`, `watch` and `list` print it."""

from __future__ import annotations

COUNTED = ("ok", "blocked", "unchecked", "failed", "cancelled")


def summary_line(job: dict) -> str:
    """'JOB: partial (3 ok, 1 failed)' with the review's counts for a job with review."""
    # Counts of what was made: the summary once the job ended, its progress before that.
    progress = job.get("progress") if isinstance(job.get("progress"), dict) else None
    summary = job.get("summary") or progress or {}
    counts = ", ".join(f"{summary[k]} {k}" for k in COUNTED if summary.get(k))
    line = f"{job['id']}: {job['status']}" + (f" ({counts})" if counts else "")
    return line + review_line(job) + cost_line(job)


def cost_line(job: dict) -> str:
    """'; GPU 12.3 s, estimated cost 0.0116' once the job ended (the cost when a price is set)."""
    summary = job.get("summary") or {}
    if summary.get("gpu_seconds") is None:
        return ""
    cost = summary.get("estimated_cost")
    return f"; GPU {summary['gpu_seconds']:.1f} s" + (f", estimated cost {cost:.4f}" if cost is not None else "")


def review_line(job: dict) -> str:
    """'; review: 2 approved, 1 rejected, 5 undecided (until ...)' for a job with review."""
    progress = job.get("progress") or {}
    summary = job.get("summary") or {}
    decided = progress.get("review") if isinstance(progress, dict) else None
    if summary.get("approved") is not None:
        decided = {k: summary[k] for k in ("approved", "rejected", "undecided")}
    if not decided:
        return ""
    words = ", ".join(f"{decided.get(k, 0)} {k}" for k in ("approved", "rejected", "undecided"))
    deadline = str(progress.get("deadline") or "")[:16].replace("T", " ")
    until = f" until {deadline} UTC" if job["status"] == "awaiting_review" and deadline else ""
    return f"; review: {words}{until}"


def progress_line(job: dict) -> str:
    """The summary line, with the phase and the images done so far while the job runs."""
    progress: dict = job["progress"] if isinstance(job.get("progress"), dict) else {}
    line = summary_line(job)
    if job.get("status") not in ("queued", "running") or not progress.get("total"):
        return line
    return f"{line} [{progress.get('phase', '')}: {progress.get('done', 0)}/{progress['total']}]"


def list_row(job: dict) -> str:
    """One job of `imagegen list`: created time, status, source, id, name."""
    return (f"{job.get('createdTime') or '':32} {job.get('status', ''):15} {job.get('source') or '':8} "
            f"{job.get('id', '')}  {job.get('name') or ''}").rstrip()
