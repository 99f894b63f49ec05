"""The web gallery's pages: HTML rendered from what the jobs API and manifests say.

Jinja2 with autoescape renders every user string (names, prompts, reasons) escaped. One
stylesheet and one small script are package data; there is no front-end build. This
module knows nothing of azure.functions: `triggers/gallery.py` serves what it renders.

Only `ok` variants are ever shown; blocked and unchecked images stay in quarantine and
are only counted.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape

from imagegen.core.types import ENDED_STATES, JOB_STATES
from imagegen.records.manifest import Manifest

STATUSES = JOB_STATES
ENDED = ENDED_STATES
# Jobs whose manifest is worth reading: ended, or written when the review began.
WITH_MANIFEST = ENDED | {"awaiting_review"}
STATIC = {"gallery.css": "text/css; charset=utf-8", "gallery.js": "text/javascript; charset=utf-8"}
THUMBNAILS = 4  # first images shown per job in the list
PAGE_SIZE = 50  # jobs per page of the list; older ones are a link away

_env = Environment(loader=PackageLoader("imagegen.gallery_pages", "templates"),
                   autoescape=select_autoescape(["html"], default=True),
                   trim_blocks=True, lstrip_blocks=True)


def image_url(job_id: str, variant_id: str) -> str:
    return f"/api/jobs/{quote(job_id, safe='')}/images/{quote(variant_id, safe='')}"


def job_url(job_id: str) -> str:
    return f"/api/gallery/jobs/{quote(job_id, safe='')}"


def list_url(status: str | None = None, token: str | None = None) -> str:
    """The jobs list (filtered by `status`), from its newest job or from where `token` says."""
    query = {key: value for key, value in (("status", status), ("continuationToken", token)) if value}
    return "/api/gallery" + (f"?{urlencode(query)}" if query else "")


_env.globals.update(image_url=image_url, job_url=job_url, statuses=STATUSES)


def percent(progress: Any) -> int:
    """How far a job is, 0-100, from its customStatus (`done` of `total`)."""
    if not isinstance(progress, dict) or not progress.get("total"):
        return 0
    return max(0, min(100, round(100 * int(progress.get("done", 0)) / int(progress["total"]))))


def ok_variants(manifest: Manifest | None) -> list:
    return [v for v in manifest.variants if v.status == "ok" and v.blob] if manifest else []


def hidden_counts(manifest: Manifest | None) -> dict[str, int]:
    """Variants not shown, by status (blocked, unchecked, failed): counted, never displayed."""
    counts: dict[str, int] = {}
    for variant in manifest.variants if manifest else []:
        if variant.status != "ok":
            counts[variant.status] = counts.get(variant.status, 0) + 1
    return counts


def jobs_page(jobs: list[dict], manifests: dict[str, Manifest], status: str | None = None, *,
              older: str | None = None, first: bool = True) -> str:
    """One page of the jobs list: `jobs` as `GET /api/jobs` shows them, newest first;
    `manifests` by job id. `older`: the token of the next page (a link to it), None on the
    last; `first`: whether this is the newest page (else a link back to it)."""
    rows = [{**job, "percent": 100 if job["status"] in WITH_MANIFEST else percent(job.get("progress")),
             "thumbnails": ok_variants(manifests.get(job["id"]))[:THUMBNAILS],
             "ended": job["status"] in WITH_MANIFEST} for job in jobs]  # settled: no need to poll
    live = any(not row["ended"] for row in rows)
    return _env.get_template("jobs.html").render(
        jobs=rows, status=status, live=live, title="Jobs", first=first,
        older_url=list_url(status, older) if older else None, newest_url=list_url(status))


TIMELINE_ROW = 12  # SVG units per GPU call; the chart is 1000 units wide


def timeline(manifest: Manifest | None) -> dict | None:
    """The job's GPU calls over time, for a Gantt chart: one row per call (the variants
    that share its start and end), x from the job's start (0) to its manifest (1000)."""
    calls: dict[tuple, int] = {}
    for variant in manifest.variants if manifest else []:
        if variant.started_at and variant.finished_at:
            key = (variant.started_at, variant.finished_at)
            calls[key] = calls.get(key, 0) + 1
    if not calls or manifest is None:  # no calls without a manifest
        return None
    began = manifest.created_at
    seconds = max((manifest.finished_at - began).total_seconds(), 1e-3)
    rows = []
    for row, ((started, finished), images) in enumerate(sorted(calls.items())):
        offset, length = (started - began).total_seconds(), (finished - started).total_seconds()
        rows.append({"x": round(1000 * offset / seconds, 1), "width": round(max(2.0, 1000 * length / seconds), 1),
                     "y": row * TIMELINE_ROW, "images": images, "seconds": length, "offset": offset})
    return {"rows": rows, "seconds": seconds, "height": len(rows) * TIMELINE_ROW, "row": TIMELINE_ROW}


def job_page(job: dict, manifest: Manifest | None, signed_in: str | None = None) -> str:
    """One job: progress while it runs, then its image grid with every variant's parameters
    and the timeline of its GPU calls.

    A job awaiting review shows the review bar (select, approve / reject with a note); it
    does not reload itself, so a selection or a half-written note is never lost: its script
    follows each decision through the manifest and updates the page in place. `signed_in`
    is the reviewer the platform signed in, if any (else the page asks for a name)."""
    reviewing = job["status"] == "awaiting_review" and manifest is not None and manifest.review is not None
    settled = job["status"] in WITH_MANIFEST
    return _env.get_template("job.html").render(
        job=job, manifest=manifest, variants=ok_variants(manifest), hidden=hidden_counts(manifest),
        percent=100 if settled else percent(job.get("progress")), live=not settled and not reviewing,
        reviewing=reviewing, signed_in=signed_in, title=job.get("name") or job["id"], timeline=timeline(manifest))


def new_job_page(models: list[dict] | None = None) -> str:
    """The new-job form; its script submits through `POST /api/jobs` and shows field errors in place.
    `models`: the catalog (`imagegen.service.operations.model_views`), offered in a list,
    the default first; sizes and steps left empty get the chosen model's defaults."""
    return _env.get_template("new.html").render(live=False, title="New job", models=models or [])


def static_file(name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) of the stylesheet or script, None for any other name."""
    if name not in STATIC:
        return None
    return resources.files(__package__).joinpath("static", name).read_bytes(), STATIC[name]
