"""The `generate_batch` orchestration: one job, from its inputs to its manifest.

Replay-safe: no I/O, no clocks, no randomness. The variants are a pure function of the
job, time comes from `context.current_utc_datetime`, and everything passed to
activities is small JSON with blob names — never image bytes.
"""

from __future__ import annotations

import azure.durable_functions as df
from azure.durable_functions.models.Task import TaskState

from imagegen.messages import (
    GeneratedImage,
    JobRequest,
    JobSummary,
    Progress,
    RenderRequest,
    VariantRecord,
    input_rejections,
)
from imagegen.spec import JobSpec, batches, expand
from imagegen.types import Variant, Verdict

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
    text_verdicts = yield context.call_activity("moderate_text", {"job_id": job_id, "texts": texts})
    images = sorted({variant.image for variant in variants if variant.image})
    image_verdicts = []
    if images:  # the SDK's task_all of nothing yields None, not []
        image_verdicts = yield context.task_all(
            [context.call_activity("moderate_image", {"job_id": job_id, "ref": ref}) for ref in images]
        )
    text_verdicts = [Verdict.model_validate(v) for v in text_verdicts]
    image_verdicts = [Verdict.model_validate(v["verdict"]) for v in image_verdicts]
    rejections = input_rejections(texts, text_verdicts, images, image_verdicts)
    input_verdicts = dict(zip([*texts, *images], [*text_verdicts, *image_verdicts]))

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
                RenderRequest(job_id=job_id, batch=group).model_dump(),
                instance_id=f"{job_id}:{group.id}",
            )
            for group in groups
        ]
        # Cancel is an event raced with the batches, not a termination: the batches see the
        # cancel marker the API wrote and stop at their next step, and this orchestration
        # still writes the manifest of what was made and what was cancelled.
        cancel = context.wait_for_external_event("cancel")
        records = []
        while pending:
            finished = yield context.task_any([*pending, cancel] if not cancel.is_completed else pending)
            if finished is cancel:
                progress.phase = "cancelling"
                context.set_custom_status(progress.model_dump())
                continue
            pending.remove(finished)
            batch_records = [VariantRecord.model_validate(r) for r in finished.result]
            records.extend(batch_records)
            progress.add(batch_records)
            context.set_custom_status(progress.model_dump())
        records.sort(key=lambda record: record.variant.index)
        rejections = [f"{r.variant.id} failed: {r.error}" for r in records if r.status == "failed"]
        if cancel.is_completed:
            rejections.append("cancelled by user")

    # 5. Write the manifest.
    progress.phase = "writing manifest"
    context.set_custom_status(progress.model_dump())
    manifest = yield context.call_activity("write_manifest", {
        "job_id": job_id,
        "job": request.job,
        "source": request.source,
        "origin": request.origin,
        "created": created,
        "finished": context.current_utc_datetime.isoformat(),
        "input_verdicts": {text: verdict.model_dump() for text, verdict in input_verdicts.items()},
        "records": [record.model_dump() for record in records],
        "reasons": rejections,
    })

    # 6. Return a small summary.
    progress.phase = "done"
    context.set_custom_status(progress.model_dump())
    counts = Progress(phase="done", total=len(records))
    counts.add(records)
    return JobSummary(
        job_id=job_id, name=job.name, status=manifest["status"], total=len(records),
        ok=counts.ok, blocked=counts.blocked, failed=counts.failed, unchecked=counts.unchecked,
        cancelled=counts.cancelled,
        manifest=manifest["ref"], manifest_url=manifest["url"], reasons=rejections,
    ).model_dump()


@bp.orchestration_trigger(context_name="context")
def render_batch(context: df.DurableOrchestrationContext):
    """Generate one GPU batch, then check every image; never fails, it reports."""
    request = RenderRequest.model_validate(context.get_input())
    variants = request.batch.variants
    try:
        generated = yield context.call_activity_with_retry(
            "generate_images", GENERATE_RETRY, request.model_dump()
        )
    except Exception as error:  # the batch still failed after its retries
        reason = failure_reason(error)
        return [VariantRecord(variant=v, status="failed", error=reason).model_dump() for v in variants]

    images = [GeneratedImage.model_validate(g) for g in generated]
    checks = [
        context.call_activity("moderate_image", {"ref": image.held, "publish_to": image.publish})
        for image in images
    ]
    # Wait for every check, not just the first failure (task_all fails fast): a check that
    # passed has already moved its image to outputs/, and the record must say so.
    pending = list(checks)
    while pending:
        finished = yield context.task_any(pending)
        pending.remove(finished)

    # A batch of a cancelled job returns only the images it made before it stopped.
    made = {image.variant_id: (image, check) for image, check in zip(images, checks)}
    records = [VariantRecord(variant=v, status="cancelled").model_dump() for v in variants if v.id not in made]
    for variant in variants:
        if variant.id not in made:
            continue
        image, check = made[variant.id]
        if check.state is TaskState.FAILED:
            # Fail closed: an image whose check failed stays held in quarantine.
            reason = failure_reason(check.result)
            checked = {"verdict": Verdict(status="unchecked", provider="none", reasons=[reason]).model_dump(),
                       "ref": image.held}
        else:
            checked = check.result
        verdict = Verdict.model_validate(checked["verdict"])
        status = "ok" if verdict.status == "safe" else verdict.status
        records.append(VariantRecord(variant=variant, status=status, image=image,
                                     ref=checked["ref"], verdict=verdict).model_dump())
    return records


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
