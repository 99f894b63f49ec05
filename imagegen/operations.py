"""What each activity does, composed from the library's modules.

Activities (in `activities/`) are one call into a function here. Every function takes and
returns small JSON-able values with blob names, because that is what orchestration
history holds. Each is safe to run twice (activities are at-least-once): blob names are
deterministic, so a repeated write overwrites.

Fail closed: a generated image is written to `quarantine/` first and moved to `outputs/`
only when its check says `safe`. An image whose check failed, or never ran, stays held.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import threading

from urllib.parse import urlsplit

from imagegen import notify, storage, telemetry
from imagegen.messages import GeneratedImage, RenderRequest, VariantRecord
from imagegen.manifest import (
    ManifestVariant,
    VariantReview,
    build_manifest,
    record_notification,
    write_manifest as upload_manifest,
)
from imagegen.safety import get_provider, unchecked_verdict
from imagegen.settings import Settings
from imagegen.spec import Limits, check_source_image
from imagegen.types import Variant, Verdict

log = logging.getLogger(__name__)


def moderate_texts(texts: list[str]) -> list[dict]:
    """One verdict per text, in order."""
    provider = get_provider()
    with telemetry.span("safety.check_texts", provider=provider.name, texts=len(texts)):
        verdicts = provider.check_texts(list(texts))
    return [verdict.model_dump() for verdict in verdicts]


def moderate_image(ref: str, publish_to: str | None = None) -> dict:
    """Check the image at `ref`; when `publish_to` is given and it is safe, move it there.

    Returns `{"verdict": Verdict, "ref": where the image is now}`.
    """
    if publish_to:
        inject_check_fault(ref)
    store = storage.get_store()
    if publish_to and not store.exists(ref) and store.exists(publish_to):
        # A re-run after the move already happened: check the published copy again.
        ref, publish_to, moved_back_to = publish_to, None, ref
    else:
        moved_back_to = None
    try:
        data = store.get(ref)
    except storage.BlobNotFound:
        verdict = unchecked_verdict("none", f"image {ref} was not found")
        return {"verdict": verdict.model_dump(), "ref": ref}
    provider = get_provider()
    with telemetry.span("safety.check_image", provider=provider.name, bytes=len(data)):
        verdict = provider.check_image(data)
    if verdict.status == "safe" and publish_to:
        store.move(ref, publish_to)
        ref = publish_to
    elif verdict.status != "safe" and moved_back_to:
        store.move(ref, moved_back_to)
        ref = moved_back_to
    return {"verdict": verdict.model_dump(), "ref": ref}


def generate_images(request: dict) -> list[dict]:
    """Generate one batch on the GPU and hold every image in quarantine until it is checked.

    When the job is cancelled (its cancel marker exists) it stops between GPU calls and
    between diffusion steps, and returns only the images it made: the rest are cancelled.
    """
    from imagegen.diffusion import GenerationCancelled, get_engine  # torch loads only where we generate
    from imagegen.metadata import encode_image

    render = RenderRequest.model_validate(request)
    settings = Settings.from_env()
    inject_fault(render)
    engine = get_engine(settings.model, settings.model_revision)
    store = storage.get_store()
    first = render.batch.variants[0]
    source = None
    if first.image:
        source = check_source_image(store.get(first.image), Limits.from_settings(settings),
                                    path=f"variants[{first.index}].image")

    marker = storage.cancel_marker_ref(render.job_id)

    def cancelled() -> bool:
        return store.exists(marker)

    images = []
    for chunk in chunks(render.batch, engine.max_batch_size(first.width, first.height)):
        if cancelled():
            break
        try:
            with telemetry.span("gpu_batch", batch_id=chunk.id, batch_size=len(chunk.variants),
                                image_width=first.width, image_height=first.height, image_steps=first.steps,
                                device=engine.device.type):
                made = engine.generate(chunk, source, cancelled=cancelled)
        except GenerationCancelled:
            break
        telemetry.record_images(len(made), made[0].seconds if made else 0.0, engine.device.type,
                                engine.peak_memory_bytes())
        log.info("made %d images of batch %s in %.2f s each", len(made), render.batch.id,
                 made[0].seconds if made else 0.0)
        for variant, generated in zip(chunk.variants, made):
            data = encode_image(generated.image, variant.format, image_parameters(variant, engine))
            ext = extension(variant.format)
            held = storage.quarantine_ref(render.job_id, variant.id, ext)
            store.put(held, data)
            images.append(GeneratedImage(
                variant_id=variant.id, held=held,
                publish=storage.output_ref(render.job_id, variant.id, ext),
                sha256=hashlib.sha256(data).hexdigest(),
                width=generated.image.width, height=generated.image.height,
                seconds=round(generated.seconds, 3),
                model=engine.model, revision=engine.revision, device=engine.device.type,
            ).model_dump())
    return images


def write_manifest(payload: dict) -> dict:
    """Build the manifest from the orchestration's records and write it in one upload.

    Returns the manifest's blob name, URL and the job status it computed, so the
    orchestration reports the same status the manifest holds.
    """
    store = storage.get_store()
    input_verdicts = {key: Verdict.model_validate(v) for key, v in payload["input_verdicts"].items()}
    variants = []
    for record in (VariantRecord.model_validate(r) for r in payload["records"]):
        image = record.image
        variants.append(ManifestVariant.from_variant(
            record.variant, status=record.status, error=record.error,
            blob=record.ref, url=store.url(record.ref) if record.ref else None,
            sha256=image.sha256 if image else None,
            image_width=image.width if image else None, image_height=image.height if image else None,
            seconds=image.seconds if image else None,
            model=image.model if image else None, model_revision=image.revision if image else None,
            device=image.device if image else None,
            input_verdict=input_verdict(record.variant, input_verdicts), output_verdict=record.verdict,
        ))
    decisions = payload.get("decisions") or {}
    if decisions:
        variants = [v.model_copy(update={"review": VariantReview.model_validate(decisions[v.id])})
                    if v.id in decisions else v for v in variants]
    manifest = build_manifest(
        job_id=payload["job_id"], name=payload["job"].get("name", payload["job_id"]),
        source=payload["source"], job=redact_notify_url(payload["job"]),
        created_at=payload["created"], finished_at=payload["finished"],
        variants=variants, reasons=payload.get("reasons", []), review=payload.get("review"),
    )
    url = upload_manifest(store, manifest)
    totals = manifest.totals
    telemetry.job_span(manifest.job_id, manifest.created_at, {
        "job.name": manifest.name, "job.variants": len(manifest.variants), "job.status": manifest.status,
        "job.ok": totals.ok, "job.blocked": totals.blocked, "job.failed": totals.failed,
        "job.generation_seconds": totals.seconds,
    })
    return {"ref": storage.manifest_ref(manifest.job_id), "url": url, "status": manifest.status,
            "totals": manifest.totals.model_dump()}


def redact_notify_url(job: dict) -> dict:
    """The job as the manifest records it: a webhook URL often carries its secret in the
    path (Slack, Teams), so only its scheme and host are kept."""
    url = (job.get("notify") or {}).get("url")
    if not url:
        return job
    parts = urlsplit(url)
    return {**job, "notify": {"url": f"{parts.scheme}://{parts.hostname}/…"}}


def publish_images(payload: dict) -> dict[str, str]:
    """Copy approved images server-side from outputs/ to published/{job}/{variant}.{ext}.

    `payload`: {"job_id", "images": {variant_id: outputs ref}}; returns {variant_id: published
    ref}. A plain copy of the outputs blob, so whatever the outputs image carries (its
    embedded parameters, Content Credentials) is what gets published. Idempotent.
    """
    store = storage.get_store()
    published = {}
    for variant_id, ref in payload["images"].items():
        container, path = storage.split_ref(ref)
        if container != "outputs":  # fail closed: only a checked, safe image is ever published
            raise ValueError(f"only images in outputs/ can be published, got {ref!r}")
        ext = path.rsplit(".", 1)[-1]
        target = storage.published_ref(payload["job_id"], variant_id, ext)
        store.copy(ref, target)
        published[variant_id] = target
    return published


def notify_job(payload: dict) -> dict:
    """Call the job's webhook (its own `notify.url`, else IMAGEGEN_NOTIFY_URL) and record
    the outcome in the manifest. Never raises for a webhook's sake: the job goes on.

    `payload`: {"job_id", "name", "event", "status", "counts", "url": the job's own URL or None}.
    """
    settings = Settings.from_env()
    job_url = payload.get("url")
    url = job_url or settings.notify_url
    if not url:
        return {"status": "none"}
    base = settings.public_url
    job_id = payload["job_id"]
    body = notify.message(
        payload["event"], job_id=job_id, name=payload["name"], status=payload["status"],
        counts=payload["counts"], gallery_url=f"{base}/api/gallery/jobs/{job_id}",
        manifest_url=f"{base}/api/jobs/{job_id}/manifest")
    record = notify.send(url, body, event=payload["event"], allowed=settings.notify_hosts if job_url else None)
    log.info("notification %s for job %s to %s: %s", record.event, job_id, record.host, record.status)
    try:
        record_notification(storage.get_store(), job_id, record)
    except Exception:  # the record is a courtesy: losing it must not fail the job
        log.exception("could not record notification %s of job %s in its manifest", record.event, job_id)
    return record.model_dump(mode="json")


def input_verdict(variant: Variant, verdicts: dict[str, Verdict]) -> Verdict | None:
    """The verdict on a variant's inputs: the first of prompt, negative and image not safe."""
    checked = [verdicts[key] for key in (variant.prompt, variant.negative, variant.image) if key in verdicts]
    return next((v for v in checked if v.status != "safe"), checked[0] if checked else None)


def image_parameters(variant: Variant, engine) -> dict:
    """The parameters embedded in each image, enough to make it again."""
    return {
        "prompt": variant.prompt, "negative": variant.negative, "steps": variant.steps,
        "scheduler": variant.scheduler, "guidance": variant.guidance, "seed": variant.seed,
        "width": variant.width, "height": variant.height, "strength": variant.strength,
        "source_image": variant.image, "deepcache": variant.deepcache, "tiny_vae": variant.tiny_vae,
        "model": engine.model, "model_revision": engine.revision, "variant_id": variant.id,
    }


def extension(fmt: str) -> str:
    return {"jpeg": "jpg"}.get(fmt, fmt)


def chunks(batch, size: int):
    """Split a batch into GPU calls that fit the device's memory."""
    size = max(1, size)
    for start in range(0, len(batch.variants), size):
        yield batch.model_copy(update={"variants": batch.variants[start:start + size]})


# Fault injection for the end-to-end tests and for rehearsing incidents: `IMAGEGEN_FAULTS`
# holds `pattern=mode` pairs; a job whose id matches the pattern fails in generate_images,
# on its first attempt per batch (`fail-once`) or always (`fail-always`), or its first
# output check fails (`fail-check-once`, the other checks of the job run). Unset in production.
_failed_once: set[tuple[str, str]] = set()
_faults_lock = threading.Lock()


def inject_fault(render: RenderRequest) -> None:
    for pattern, mode in Settings.from_env().faults.items():
        if not fnmatch.fnmatchcase(render.job_id, pattern):
            continue
        key = (render.job_id, render.batch.id)
        with _faults_lock:
            first_time = key not in _failed_once
            _failed_once.add(key)
        if mode == "fail-always" or (mode == "fail-once" and first_time):
            raise RuntimeError(f"injected fault ({mode}) for job {render.job_id} batch {render.batch.id}")


def inject_check_fault(ref: str) -> None:
    job_id = ref.split("/")[1]  # quarantine/{job_id}/{variant_id}.{ext}
    for pattern, mode in Settings.from_env().faults.items():
        if mode != "fail-check-once" or not fnmatch.fnmatchcase(job_id, pattern):
            continue
        with _faults_lock:
            first_time = (job_id, "check") not in _failed_once
            _failed_once.add((job_id, "check"))
        if first_time:
            raise RuntimeError(f"injected fault ({mode}) checking {ref}")


def health() -> dict:
    """What `GET /api/health` shows: device, GPU, model loaded or not, safety provider."""
    from imagegen.diffusion import get_engine

    settings = Settings.from_env()
    engine = get_engine(settings.model, settings.model_revision)  # describes; loads nothing
    return {"status": "ok", **engine.describe(), "safety_provider": settings.safety_provider}
