"""The `generate_batch` orchestration: one job, from its inputs to its manifest.

Replay-safe: no I/O, no clocks, no randomness. The variants are a pure function of the
job, time comes from `context.current_utc_datetime`, and everything passed to
activities is small JSON with blob names — never image bytes.
"""

from __future__ import annotations

import azure.durable_functions as df

from imagegen.core.types import OutcomeCounts, Variant, Verdict
from imagegen.jobs.spec import JobSpec
from imagegen.jobs.variants import batches, expand
from imagegen.records.messages import (
    BatchRequest,
    GenerateImagesResult,
    JobRequest,
    JobSummary,
    ModerateImageRequest,
    ModerateImageResult,
    ModerateTextRequest,
    ModerateTextResult,
    NotifyJobRequest,
    Progress,
    RenderBatchResult,
    VariantRecord,
    WriteManifestRequest,
    WriteManifestResult,
    input_rejections,
)
from orchestrations.review import await_review

bp = df.Blueprint()

# A GPU batch that fails is tried three times, 3 s apart: enough to ride out a transient
# fault (a replica restart, an out-of-memory), short enough that a broken batch ends soon.
# (The Python SDK's RetryOptions carries only the first interval and the attempt count.)
GENERATE_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=3_000, max_number_of_attempts=3)


@bp.orchestration_trigger(context_name="context")
def generate_batch(context: df.DurableOrchestrationContext):
    request = JobRequest.model_validate(context.get_input())
    job = JobSpec.model_validate(request.job)
    job_id = context.instance_id
    created = context.current_utc_datetime.isoformat()
    variants = expand(job)
    progress = Progress(phase="moderating inputs", total=len(variants))
    context.set_custom_status(progress.model_dump())

    # 1. Moderate the inputs: every distinct prompt text in one call, every source image.
    texts = prompt_texts(variants)
    result = yield context.call_activity("moderate_text", ModerateTextRequest(job_id=job_id, texts=texts).model_dump())
    text_verdicts = ModerateTextResult.model_validate(result).verdicts
    images = sorted({variant.image for variant in variants if variant.image})
    image_verdicts: list[Verdict] = []
    if images:  # the SDK's task_all of nothing yields None, not []
        results = yield context.task_all([
            context.call_activity("moderate_image", ModerateImageRequest(job_id=job_id, image=ref).model_dump())
            for ref in images
        ])
        image_verdicts = [ModerateImageResult.model_validate(r).verdict for r in results]
    rejections = input_rejections(texts, text_verdicts, images, image_verdicts)
    input_verdicts = dict(zip([*texts, *images], [*text_verdicts, *image_verdicts]))

    warnings: dict[str, None] = {}  # each once, in the order the batches report them
    cancel = context.wait_for_external_event("cancel")
    if rejections:
        # A blocked input ends the job: nothing is generated.
        records = [VariantRecord(variant=v, status="blocked") for v in variants]
    else:
        # 2. Group the variants into GPU batches.
        groups = batches(variants, request.max_batch)
        progress.phase = "generating"
        context.set_custom_status(progress.model_dump())

        # 3 and 4. Fan out one render per batch: generate with retries, then check each image.
        pending = [
            context.call_sub_orchestrator(
                "render_batch",
                BatchRequest(job_id=job_id, batch=group).model_dump(),
                instance_id=f"{job_id}:{group.id}",
            )
            for group in groups
        ]
        # Cancel is an event raced with the batches, not a termination: the batches see the
        # cancel marker the API wrote and stop at their next step, and this orchestration
        # still writes the manifest of what was made and what was cancelled.
        records = []
        while pending:
            finished = yield context.task_any([*pending, cancel] if not cancel.is_completed else pending)
            if finished is cancel:
                progress.phase = "cancelling"
                context.set_custom_status(progress.model_dump())
                continue
            pending.remove(finished)
            rendered = RenderBatchResult.model_validate(finished.result)
            batch_records = rendered.records
            warnings.update(dict.fromkeys(rendered.warnings))
            records.extend(batch_records)
            progress.add(batch_records)
            context.set_custom_status(progress.model_dump())
        records.sort(key=lambda record: record.variant.index)
        rejections = [f"{r.variant.id} failed: {r.error}" for r in records if r.status == "failed"]
        if cancel.is_completed:
            rejections.append("cancelled by user")

    def manifest_request(review: dict | None = None, decisions: dict | None = None) -> WriteManifestRequest:
        return WriteManifestRequest(
            job_id=job_id, job=request.job, source=request.source, origin=request.origin,
            created=created, finished=context.current_utc_datetime.isoformat(),
            input_verdicts=input_verdicts, records=records, reasons=rejections, warnings=list(warnings),
            review=review, decisions=decisions or {},
        )

    counts = OutcomeCounts.of(record.status for record in records)
    made = {"total": len(records), **counts}
    notify = NotifyJobRequest(job_id=job_id, name=job.name, event="ended", status="", counts=made,
                              url=job.notify.url if job.notify else None) if request.notify else None

    # 5. Review: with review on, the images made and checked wait for people's decisions.
    review = book = None
    outputs = {r.variant.id: r.ref for r in records if r.status == "ok"}
    if request.review and outputs and not cancel.is_completed:
        review, book, reasons = yield from await_review(
            context, spec=request.review, outputs=outputs, progress=progress, cancel=cancel,
            write_manifest=manifest_request, notify=notify)
        rejections.extend(reasons)

    # 6. Write the manifest.
    progress.phase = "writing manifest"
    context.set_custom_status(progress.model_dump())
    written = yield context.call_activity(
        "write_manifest", manifest_request(review, book.decisions if book else None).model_dump())
    manifest = WriteManifestResult.model_validate(written)

    # 7. Return a small summary, after the last notification. That call never holds the job
    #    up: the custom status carries the final status and summary before it is made.
    summary = JobSummary(
        job_id=job_id, name=job.name, status=manifest.status, total=len(records),
        **counts, **(book.counts() if book else {}),
        manifest=manifest.manifest, manifest_url=manifest.url, reasons=rejections,
    ).model_dump()
    progress.phase = "done"
    if notify is not None:
        progress.status, progress.summary = summary["status"], summary
    context.set_custom_status(progress.model_dump())
    if notify is not None:
        yield context.call_activity("notify_job", notify.model_copy(update={
            "status": summary["status"], "counts": {**made, **(book.counts() if book else {})}}).model_dump())
    return summary


@bp.orchestration_trigger(context_name="context")
def render_batch(context: df.DurableOrchestrationContext):
    """Generate one GPU batch, every image checked as it is made; never fails, it reports."""
    request = BatchRequest.model_validate(context.get_input())
    variants = request.batch.variants
    try:
        generated = yield context.call_activity_with_retry(
            "generate_images", GENERATE_RETRY, request.model_dump()
        )
    except Exception as error:  # the batch still failed after its retries
        reason = failure_reason(error)
        return RenderBatchResult(
            records=[VariantRecord(variant=v, status="failed", error=reason) for v in variants]
        ).model_dump()

    # Each image comes back signed, checked and stored where its verdict says (outputs/ only
    # when safe). A batch of a cancelled job returns only the images it made before it stopped.
    generated = GenerateImagesResult.model_validate(generated)
    made = {checked.image.variant_id: checked for checked in generated.images}
    records = []
    for variant in variants:
        checked = made.get(variant.id)
        if checked is None:
            records.append(VariantRecord(variant=variant, status="cancelled"))
            continue
        status = "ok" if checked.verdict.status == "safe" else checked.verdict.status
        records.append(VariantRecord(variant=variant, status=status, image=checked.image,
                                     ref=checked.ref, verdict=checked.verdict))
    return RenderBatchResult(records=records, warnings=generated.warnings).model_dump()


def prompt_texts(variants: list[Variant]) -> list[str]:
    """Every distinct prompt and negative prompt, in the order the variants use them."""
    texts: dict[str, None] = {}
    for variant in variants:
        texts[variant.prompt] = None
        if variant.negative:
            texts[variant.negative] = None
    return list(texts)


def failure_reason(error: Exception) -> str:
    # The SDK surfaces an activity failure as "{Reason} \n {Details}"; the reason is what a user needs.
    return str(error).split(" \n ", 1)[0].strip() or type(error).__name__
