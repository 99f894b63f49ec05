"""The web gallery, served by the app itself under /api/gallery (no separate web server).

    GET /api/gallery                     jobs list, newest first, 50 a page with a link to older
                                         ones (?status=&source=&namePrefix=&createdAfter=&continuationToken=),
                                         live while jobs run
    GET /api/gallery/jobs/{id}           one job: progress, then its image grid
    GET /api/gallery/new                 a form that submits a job through POST /api/jobs
    GET /api/gallery/static/{name}       the stylesheet and script

Pages are rendered by `imagegen.gallery_pages` from the same views as the jobs API; images
come from `GET /api/jobs/{id}/images/{variant}`, which serves only published (ok) images.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from imagegen import gallery_pages as gallery
from imagegen.core.types import JobValidationError
from imagegen.records.manifest import Manifest
from imagegen.service.operations import model_views
from imagegen.service.process import current
from imagegen.storage import blobs as storage
from imagegen.storage.manifests import read_manifest
from triggers.job_listing import DurableInstances, list_request, newest_jobs
from triggers.jobs import ORCHESTRATION, PRINCIPAL_HEADER, is_job_id, job_view, origin
from triggers.responses import not_found, problem, problems_on_failure

bp = df.Blueprint()
# Pages are no-store: a refresh after a job moves on must not show a stale page.
HTML_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                                           "base-uri 'none'; frame-ancestors 'none'"}


@bp.route(route="gallery", methods=["GET"])
# The binding's JSON text: the list pages through the management API (triggers/job_listing.py).
@bp.generic_input_binding(arg_name="client", type="durableClient")
@problems_on_failure
async def gallery_jobs(req: func.HttpRequest, client: str) -> func.HttpResponse:
    try:
        request = list_request(req.params, default_top=gallery.PAGE_SIZE)
    except JobValidationError as error:
        return problem(400, "Invalid query", "; ".join(e.message for e in error.errors), error.errors)
    async with DurableInstances.open(client) as hub:
        page = await newest_jobs(hub, request, base=origin(req))
    jobs = page.jobs
    store = current().store
    manifests = {job["id"]: m for job in jobs if job["status"] in gallery.WITH_MANIFEST
                 and (m := _manifest(store, job["id"])) is not None}
    older = page.next.token() if page.next else None
    return _html(gallery.jobs_page(jobs, manifests, request.filters.status, older=older,
                                   first=request.after is None))


@bp.route(route="gallery/jobs/{id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
@problems_on_failure
async def gallery_job(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    job_id = req.route_params["id"]
    if not is_job_id(job_id):
        return not_found(job_id)
    status = await client.get_status(job_id, show_input=True)
    if not status or status.name != ORCHESTRATION:
        return not_found(job_id)
    job = job_view(status, origin(req))
    manifest = _manifest(current().store, job_id) if job["status"] in gallery.WITH_MANIFEST else None
    signed_in = (req.headers.get(PRINCIPAL_HEADER) or "").strip() or None
    return _html(gallery.job_page(job, manifest, signed_in))


@bp.route(route="gallery/new", methods=["GET"])
def gallery_new_job(req: func.HttpRequest) -> func.HttpResponse:
    return _html(gallery.new_job_page(model_views(current())))


@bp.route(route="gallery/static/{name}", methods=["GET"])
def gallery_static(req: func.HttpRequest) -> func.HttpResponse:
    found = gallery.static_file(req.route_params["name"])
    if found is None:
        return problem(404, "Not found", "The gallery has no such file.")
    data, content_type = found
    return func.HttpResponse(data, mimetype=content_type.split(";")[0], charset="utf-8",
                             headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"})


def _manifest(store: storage.BlobStore, job_id: str) -> Manifest | None:
    try:
        return read_manifest(store, job_id)
    except (storage.BlobNotFound, ValueError):
        return None


def _html(body: str) -> func.HttpResponse:
    return func.HttpResponse(body, mimetype="text/html", charset="utf-8", headers=HTML_HEADERS)
