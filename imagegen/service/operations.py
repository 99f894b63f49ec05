"""What each activity does, composed from the library's modules.

Each registered activity (in `activities/`) is one call into the function of the same name
here, which takes one request model and the process's `Services` (`imagegen.service.services`:
the store, safety provider, signer, engine, checker, webhook sender and clock) and returns one
result model (`imagegen.records.messages`):
small JSON with blob names, because that is what orchestration history holds. Each is
safe to run twice (activities are at-least-once): blob names are deterministic, so a
repeated write overwrites.

Fail closed: a generated image is signed and checked before it is stored, and written to
`outputs/` only when its check says `safe`; to `quarantine/` when it is blocked, its check
failed, or its signing failed.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, wait

from imagegen.checks.safety import unchecked_verdict
from imagegen.core import blob_names, telemetry
from imagegen.core.limits import Limits
from imagegen.core.types import Variant
from imagegen.generation.model_fit import model_defaults
from imagegen.jobs.source_image_checks import check_source_image
from imagegen.jobs.variants import split_batch
from imagegen.records.messages import (
    BatchRequest,
    GenerateImagesResult,
    ModerateImageRequest,
    ModerateImageResult,
    ModerateTextRequest,
    ModerateTextResult,
    NotifyJobRequest,
    NotifyJobResult,
    PublishImagesRequest,
    PublishImagesResult,
    ReadReviewPassesRequest,
    ReviewPassesResult,
    WriteManifestRequest,
    WriteManifestResult,
    manifest_for,
)
from imagegen.service import adapters, notify
from imagegen.service.services import Services
from imagegen.storage import blobs as storage
from imagegen.storage import review_passes
from imagegen.storage.manifests import record_notification, upload_manifest

log = logging.getLogger(__name__)


def moderate_text(request: ModerateTextRequest, services: Services) -> ModerateTextResult:
    """One verdict per text, in order."""
    provider = services.safety
    with telemetry.span("safety.check_texts", provider=provider.name, texts=len(request.texts)):
        return ModerateTextResult(verdicts=provider.check_texts(list(request.texts)))


def moderate_image(request: ModerateImageRequest, services: Services) -> ModerateImageResult:
    """Check one source image; it stays where it is. One that cannot be read is unchecked."""
    try:
        data = services.store.get(request.image)
    except storage.BlobNotFound:
        return ModerateImageResult(verdict=unchecked_verdict("none", f"image {request.image} was not found"),
                                   image=request.image)
    provider = services.safety
    with telemetry.span("safety.check_image", provider=provider.name, bytes=len(data)):
        verdict = provider.check_image(data)
    return ModerateImageResult(verdict=verdict, image=request.image)


def generate_images(request: BatchRequest, services: Services) -> GenerateImagesResult:
    """Generate one batch; sign, check and store every image once, where its check says.

    After each GPU call its images go to the checker (`imagegen.service.output_checks`, a process of
    its own), which signs them, checks them in one safety call and writes each once: to
    `outputs/` when safe, else to `quarantine/`; meanwhile the engine makes the next call.

    When the job is cancelled (its cancel marker exists) it stops between GPU calls and
    between diffusion steps, and returns only the images it made: the rest are cancelled.
    """
    from imagegen.checks import provenance  # like torch, the C2PA SDK loads only where we generate
    from imagegen.generation.engine import GenerationCancelled  # torch loads only where we generate
    from imagegen.service import output_checks

    settings = services.settings
    services.checker.start()
    first = request.batch.variants[0]
    engine = services.model_engine(first.model)  # a batch never mixes models (Variant.call_settings)
    store = services.store
    adapter_files = adapters.files_for(request.batch.variants, services)  # a batch shares one adapter set
    source = mask = ingredient = None
    if first.image:
        source_bytes = store.get(first.image)
        source = check_source_image(source_bytes, Limits.from_settings(settings),
                                    path=f"variants[{first.index}].image")
        # The C2PA ingredient is the source image alone: the mask is a selection over it, not
        # content of the image made (the manifest and the image's parameters name the mask).
        ingredient = provenance.Source.of(source_bytes, title=first.image.rsplit("/", 1)[-1])
    if first.mask:  # one mask per batch, as one source (Variant.call_settings)
        mask = check_source_image(store.get(first.mask), Limits.from_settings(settings),
                                  path=f"variants[{first.index}].mask")

    marker = blob_names.cancel_marker_ref(request.job_id)

    def cancelled() -> bool:
        return store.exists(marker)

    checks: list[tuple[output_checks.GpuCall, Future]] = []
    try:
        for chunk in split_batch(request.batch, engine.max_batch_size(first.width, first.height)):
            if cancelled():
                break
            started = services.clock().isoformat()
            try:
                with telemetry.span("gpu_batch", batch_id=chunk.id, batch_size=len(chunk.variants),
                                    image_width=first.width, image_height=first.height, image_steps=first.steps,
                                    device=engine.device.type):
                    made = engine.generate(chunk, source, cancelled=cancelled, mask_image=mask, adapters=adapter_files)
            except GenerationCancelled:
                break
            call = output_checks.GpuCall(
                job_id=request.job_id, variants=chunk.variants, images=[image.image for image in made],
                seconds=[image.seconds for image in made], started=started, finished=services.clock().isoformat(),
                model=engine.model, revision=engine.revision, device=engine.device.type, ingredient=ingredient,
                generated_sizes=[image.generated_size for image in made],
                model_name=first.model, family=engine.facts.name, config_sha256=engine.config_sha256)
            telemetry.record_images(len(made), made[0].seconds if made else 0.0, engine.device.type,
                                    engine.peak_memory_bytes())
            log.info("made %d images of batch %s in %.2f s each", len(made), request.batch.id,
                     made[0].seconds if made else 0.0)
            checks.append((call, services.checker.submit(call)))
        return GenerateImagesResult(images=[checked for _, future in checks for checked in future.result()],
                                    warnings=prompt_warnings(request.batch.variants, engine))
    except BaseException:
        # A failed try leaves nothing stored: its retry makes the same images under the same
        # names, and a batch that fails for good must leave no image its manifest does not list.
        # The checker may have written any of a call's images before it failed (or died).
        wait([future for _, future in checks])
        for call, _ in checks:
            for ref in call.refs():
                try:
                    store.delete(ref)
                except Exception:  # noqa: BLE001 - the original failure is the one to report
                    log.exception("could not remove %s after a failed generate_images", ref)
        raise


def write_manifest(request: WriteManifestRequest, services: Services) -> WriteManifestResult:
    """Build the manifest from the orchestration's records and write it in one upload."""
    store = services.store
    manifest = manifest_for(request, store.url, services.settings.gpu_price_per_hour)
    url = upload_manifest(store, manifest)
    totals = manifest.totals
    telemetry.job_span(manifest.job_id, manifest.created_at, {
        "job.name": manifest.name, "job.variants": len(manifest.variants), "job.status": manifest.status,
        "job.ok": totals.ok, "job.blocked": totals.blocked, "job.failed": totals.failed,
        "job.generation_seconds": totals.seconds,
    })
    services.job_events.manifest_written(manifest.job_id)
    return WriteManifestResult(manifest=blob_names.manifest_ref(manifest.job_id), url=url, status=manifest.status,
                               gpu_seconds=totals.seconds, estimated_cost=totals.estimated_cost)


def read_review_passes(request: ReadReviewPassesRequest, services: Services) -> ReviewPassesResult:
    """The review passes people sent since the orchestration last read (`imagegen.storage.review_passes`)."""
    return ReviewPassesResult(passes=review_passes.read_review_passes(services.store, request.job_id, request.after))


def publish_images(request: PublishImagesRequest, services: Services) -> PublishImagesResult:
    """Copy approved images server-side from outputs/ to published/{job}/{variant}.{ext}.

    A plain copy of the outputs blob, so whatever the outputs image carries (its
    embedded parameters, Content Credentials) is what gets published. Idempotent.
    """
    store = services.store
    published = {}
    for variant_id, ref in request.images.items():
        container, path = blob_names.split_ref(ref)
        if container != "outputs":  # fail closed: only a checked, safe image is ever published
            raise ValueError(f"only images in outputs/ can be published, got {ref!r}")
        ext = path.rsplit(".", 1)[-1]
        target = blob_names.published_ref(request.job_id, variant_id, ext)
        store.copy(ref, target)
        published[variant_id] = target
    return PublishImagesResult(published=published)


def notify_job(request: NotifyJobRequest, services: Services) -> NotifyJobResult:
    """Call the job's webhook (its own `notify.url`, else IMAGEGEN_NOTIFY_URL) and record
    the outcome in the manifest. Never raises for a webhook's sake: the job goes on.
    """
    settings = services.settings
    job_url = request.url
    url = job_url or settings.notify_url
    if not url:
        return NotifyJobResult(record=None)
    base = settings.public_url
    job_id = request.job_id
    body = notify.message(
        request.event, job_id=job_id, name=request.name, status=request.status,
        counts=request.counts, gallery_url=f"{base}/api/gallery/jobs/{job_id}",
        manifest_url=f"{base}/api/jobs/{job_id}/manifest")
    record = services.send_webhook(url, body, event=request.event, allowed=settings.notify_hosts if job_url else None)
    log.info("notification %s for job %s to %s: %s", record.event, job_id, record.host, record.status)
    try:
        record_notification(services.store, job_id, record)
    except Exception:  # the record is a courtesy: losing it must not fail the job
        log.exception("could not record notification %s of job %s in its manifest", record.event, job_id)
    return NotifyJobResult(record=record)


def prompt_warnings(variants: list[Variant], engine) -> list[str]:
    """A warning for each distinct prompt or negative prompt of the batch that a text
    encoder of the model truncates (77 tokens for CLIP, 256 or 512 for T5): it is silently
    cut short otherwise."""
    texts: dict[str, str] = {}
    for variant in variants:
        style = f" with style {variant.style!r}" if variant.style else ""
        texts.setdefault(variant.prompt, f"`prompts[{variant.prompt_index}].text`{style}")
        if variant.negative:
            texts.setdefault(variant.negative, f"`prompts[{variant.prompt_index}].negative`")
    return engine.prompt_warnings(list(texts), list(texts.values()))


def health(services: Services) -> dict:
    """What `GET /api/health` shows: device, GPU, the default model loaded or not, every
    model of the catalog with its family, the safety provider, the C2PA signer and its
    certificate; `status` is `unhealthy` with `problems` while the signer cannot sign (the
    route answers 503). Problems are public sentences, never internal text."""
    settings = services.settings
    engine = services.model_engine(None, in_use=False)  # describes; loads nothing, unloads nothing
    models = [{key: view[key] for key in ("name", "family", "default", "loaded")} for view in model_views(services)]
    signer = services.signer_readiness.state()
    problems = [] if signer.ready else [signer.problem or "the C2PA signer cannot sign"]
    return {"status": "unhealthy" if problems else "ok", "problems": problems, **engine.describe(), "models": models,
            "safety_provider": settings.safety_provider, "c2pa_signer": settings.c2pa_signer,
            "c2pa_certificate": signer.certificate}


def model_views(services: Services) -> list[dict]:
    """Every model of the catalog, default first: name, source, family, its defaults, loaded
    or not here (`GET /api/models`). A model whose files cannot be read says why."""
    models = services.models
    views = []
    for name in sorted(models.entries, key=lambda known: (known != models.default, known)):
        entry = models.entries[name]
        view: dict = {"name": name, "source": entry.source, "revision": entry.revision, "default": name == models.default,
                      "loaded": services.is_loaded(entry), "tiny_vae": entry.has_tiny_vae,
                      "family": None, "flavour": None, "defaults": None, "problem": None}
        try:
            facts = services.model_facts(name)
        except ValueError as error:  # a folder gone, a hub model not in the cache
            view["problem"] = str(error)
        else:
            view.update(family=facts.name, family_title=facts.family.title, flavour=facts.flavour,
                        defaults=model_defaults(facts, Limits.from_settings(services.settings)).model_dump())
        views.append(view)
    return views
