"""The `generate_batch` orchestration: one job, from its inputs to its manifest.

    moderate inputs → render batches → review → write manifest → notify

Each step is a small generator over one `JobRun`, the state of this run that the steps read
and add to; `generate_batch` reads as that list. Replay-safe: no I/O, no clocks, no
randomness. The variants are a pure function of the job, time comes from
`context.current_utc_datetime`, and everything passed to activities is small JSON with blob
names — never image bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import azure.durable_functions as df

from imagegen.core.types import OutcomeCounts, Variant, Verdict
from imagegen.jobs.spec import ReviewSpec
from imagegen.jobs.variants import batches, expand
from imagegen.records.manifest import ManifestReview
from imagegen.records.messages import (
    BatchRequest,
    JobRequest,
    JobSummary,
    ModerateImageRequest,
    ModerateImageResult,
    ModerateTextRequest,
    ModerateTextResult,
    NotifyJobRequest,
    Phase,
    Progress,
    RenderBatchResult,
    RenderOrder,
    RenderOutcome,
    VariantRecord,
    WriteManifestRequest,
    WriteManifestResult,
    input_rejections,
    rendered_event,
)
from imagegen.records.review_book import ReviewBook
from orchestrations.review import await_review

bp = df.Blueprint()

# A GPU batch that fails is tried three times, 3 s apart: enough to ride out a transient
# fault (an out-of-memory, a flaky download), short enough that a broken batch ends soon.
RENDER_TRIES = 3
RETRY_DELAY = timedelta(seconds=3)
# A backstop, not a schedule: the GPU pool answers every order it takes (and the control
# plane every order the pool failed on five times), so only an order lost outright meets
# it. Generous, because a big job's last batches wait in the queue behind its first ones.
RENDER_DEADLINE = timedelta(hours=24)
# Ordering is two storage writes: a second or two rides out a storage hiccup.
ORDER_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1_000, max_number_of_attempts=3)
GAVE_UP = "the GPU pool did not answer within 24 hours"


@dataclass
class JobRun:
    """What this run of a job knows so far: its request, the outcome of every variant, and
    what the user sees while it runs (the custom status)."""

    context: df.DurableOrchestrationContext
    request: JobRequest
    variants: list[Variant]
    progress: Progress
    created: str
    cancel: df.Task | None = None  # the `cancel` event, raced with the batches and the review
    input_verdicts: dict[str, Verdict] = field(default_factory=dict)  # prompt text or image -> verdict
    blocked_inputs: list[str] = field(default_factory=list)  # why the inputs were refused
    records: list[VariantRecord] = field(default_factory=list)  # one per variant once rendered, in job order
    warnings: dict[str, None] = field(default_factory=dict)  # each once, in the order the batches report them
    review: ManifestReview | None = None
    book: ReviewBook | None = None
    cancelled_while_rendering: bool = False
    review_reasons: list[str] = field(default_factory=list)
    manifest: WriteManifestResult | None = None

    @property
    def job_id(self) -> str:
        return self.context.instance_id

    @property
    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_completed

    def show(self, phase: Phase) -> None:
        """Tell a user polling the job where it is (the orchestration's custom status)."""
        self.progress.phase = phase
        self.context.set_custom_status(self.progress.model_dump(mode="json"))

    def counts(self) -> dict[str, int]:
        """Variants by outcome (and the review's decisions, once there are any)."""
        counts = {"total": len(self.records), **OutcomeCounts.of(record.status for record in self.records)}
        return {**counts, **(self.book.counts().model_dump() if self.book else {})}

    def manifest_request(self) -> WriteManifestRequest:
        return WriteManifestRequest(
            job_id=self.job_id, job=self.request.job, source=self.request.source, origin=self.request.origin,
            created=self.created, finished=self.context.current_utc_datetime.isoformat(),
            input_verdicts=self.input_verdicts, records=self.records, reasons=reasons(self),
            warnings=list(self.warnings), review=self.review, decisions=self.book.decisions if self.book else {},
        )

    def notify_request(self, status: str = "") -> NotifyJobRequest | None:
        """The `notify_job` request for this job; None when no webhook is to be called."""
        if not self.request.notify:
            return None
        job = self.request.job
        return NotifyJobRequest(job_id=self.job_id, name=job.name, event="ended", status=status,
                                counts=self.counts(), url=job.notify.url if job.notify else None)


@bp.orchestration_trigger(context_name="context")
def generate_batch(context: df.DurableOrchestrationContext):
    run = start_run(context)
    yield from moderate_inputs(run)
    run.cancel = context.wait_for_external_event("cancel")
    if run.blocked_inputs:
        run.records = [VariantRecord(variant=v, status="blocked") for v in run.variants]  # nothing is generated
    else:
        yield from render_batches(run)
    if run.request.review and any(r.status == "ok" for r in run.records) and not run.cancelled:
        yield from review(run, run.request.review)
    yield from write_manifest(run)
    summary = job_summary(run)
    yield from notify_ended(run, summary)
    return summary.model_dump(mode="json")


def start_run(context: df.DurableOrchestrationContext) -> JobRun:
    request = JobRequest.model_validate(context.get_input())
    variants = expand(request.job, request.defaults, request.adapters)  # what the job leaves out: its model's defaults
    run = JobRun(context=context, request=request, variants=variants,
                 progress=Progress(phase="moderating inputs", total=len(variants)),
                 created=context.current_utc_datetime.isoformat(),
                 warnings=dict.fromkeys(request.warnings))  # decided at submit, e.g. a speed-up the model lacks
    run.show("moderating inputs")
    return run


def moderate_inputs(run: JobRun):
    """1. Every distinct prompt text in one call, every source image and inpainting mask (a
    mask is an upload like any other: checked as one); anything not `safe` blocks the job."""
    texts = prompt_texts(run.variants)
    result = yield run.context.call_activity(
        "moderate_text", ModerateTextRequest(job_id=run.job_id, texts=texts).model_dump(mode="json"))
    text_verdicts = ModerateTextResult.model_validate(result).verdicts
    images = sorted({ref for variant in run.variants for ref in (variant.image, variant.mask) if ref})
    image_verdicts: list[Verdict] = []
    if images:  # the SDK's task_all of nothing yields None, not []
        results = yield run.context.task_all([
            run.context.call_activity(
                "moderate_image", ModerateImageRequest(job_id=run.job_id, image=ref).model_dump(mode="json"))
            for ref in images
        ])
        image_verdicts = [ModerateImageResult.model_validate(r).verdict for r in results]
    run.blocked_inputs = input_rejections(texts, text_verdicts, images, image_verdicts)
    run.input_verdicts = dict(zip([*texts, *images], [*text_verdicts, *image_verdicts]))


def render_batches(run: JobRun):
    """2 and 3. Group the variants into GPU batches and fan out one `render_batch` each;
    collect their records as they finish.

    Cancel is an event raced with the batches, not a termination: the batches see the cancel
    marker the API wrote and stop at their next step, and this orchestration still writes
    the manifest of what was made and what was cancelled."""
    run.show("generating")
    pending = [
        run.context.call_sub_orchestrator(
            "render_batch", BatchRequest(job_id=run.job_id, batch=group).model_dump(mode="json"),
            instance_id=f"{run.job_id}:{group.id}")
        for group in batches(run.variants, run.request.max_batch)
    ]
    while pending:
        finished = yield run.context.task_any([*pending, run.cancel] if not run.cancelled else pending)
        if finished is run.cancel:
            run.show("cancelling")
            continue
        pending.remove(finished)
        rendered = RenderBatchResult.model_validate(finished.result)
        run.warnings.update(dict.fromkeys(rendered.warnings))
        run.records.extend(rendered.records)
        run.progress.add(rendered.records)
        run.show(run.progress.phase)
    run.records.sort(key=lambda record: record.variant.index)
    run.cancelled_while_rendering = run.cancelled


def review(run: JobRun, spec: ReviewSpec):
    """4. The images made and checked wait for people's decisions (orchestrations/review.py)."""
    outputs = {r.variant.id: r.ref for r in run.records if r.status == "ok" and r.ref}
    run.review, run.book, run.review_reasons = yield from await_review(
        run.context, spec=spec, outputs=outputs, progress=run.progress, cancel=run.cancel,
        write_manifest=lambda review, book: run_with(run, review, book).manifest_request(),
        notify=run.notify_request())


def run_with(run: JobRun, review: ManifestReview, book: ReviewBook) -> JobRun:
    """The run as it stands during the review: the manifest written mid-review shows it."""
    run.review, run.book = review, book
    return run


def write_manifest(run: JobRun):
    """5. One upload; its status (`completed`, `partial`, `rejected`, `cancelled`) is the job's."""
    if run.book is not None:
        run.progress.review = run.book.counts()  # the review's last pass, finish, cancel or timeout
    run.show("writing manifest")
    written = yield run.context.call_activity("write_manifest", run.manifest_request().model_dump(mode="json"))
    run.manifest = WriteManifestResult.model_validate(written)


def notify_ended(run: JobRun, summary: JobSummary):
    """6. The custom status says the job ended (with its summary, when a webhook is still to be
    called: that call never holds the job up), then the webhook hears `ended`."""
    notify = run.notify_request(status=summary.status)
    run.progress.phase = "done"
    if notify is not None:
        run.progress.status, run.progress.summary = summary.status, summary
    run.show("done")
    if notify is not None:
        try:
            yield run.context.call_activity("notify_job", notify.model_dump(mode="json"))
        except Exception:  # noqa: BLE001 - the job is done and says so; a webhook never fails it
            pass


def reasons(run: JobRun) -> list[str]:
    """Why a job was rejected or is partial: the one place that says so."""
    if run.blocked_inputs:
        return [*run.blocked_inputs, *run.review_reasons]
    failed = [f"{r.variant.id} failed: {r.error}" for r in run.records if r.status == "failed"]
    cancelled = ["cancelled by user"] if run.cancelled_while_rendering else []  # later: the review says
    return [*failed, *cancelled, *run.review_reasons]


def job_summary(run: JobRun) -> JobSummary:
    """The orchestration's output, from the manifest it wrote."""
    assert run.manifest is not None, "the manifest is written before the summary"
    counts = OutcomeCounts.of(record.status for record in run.records)
    return JobSummary(
        job_id=run.job_id, name=run.request.job.name, status=run.manifest.status, total=len(run.records),
        **counts, **(run.book.counts().model_dump() if run.book else {}),
        manifest=run.manifest.manifest, manifest_url=run.manifest.url, reasons=reasons(run),
        gpu_seconds=run.manifest.gpu_seconds, estimated_cost=run.manifest.estimated_cost,
    )


@bp.orchestration_trigger(context_name="context")
def render_batch(context: df.DurableOrchestrationContext):
    """Have the GPU pool render one batch, every image checked as it is made; never fails,
    it reports. A try that fails is made again, `RENDER_TRIES` in all."""
    request = BatchRequest.model_validate(context.get_input())
    variants = request.batch.variants
    for attempt in range(1, RENDER_TRIES + 1):
        if attempt > 1:
            yield context.create_timer(context.current_utc_datetime + RETRY_DELAY)
        outcome = yield from render_on_gpu_pool(context, request, attempt)
        if outcome.result is not None or outcome.error == GAVE_UP:
            break
    if outcome.result is None:  # no try made the batch
        return RenderBatchResult(
            records=[VariantRecord(variant=v, status="failed", error=outcome.error) for v in variants]
        ).model_dump(mode="json")

    # Each image comes back signed, checked and stored where its verdict says (outputs/ only
    # when safe). A batch of a cancelled job returns only the images it made before it stopped.
    made = {checked.image.variant_id: checked for checked in outcome.result.images}
    records = []
    for variant in variants:
        checked = made.get(variant.id)
        if checked is None:
            records.append(VariantRecord(variant=variant, status="cancelled"))
            continue
        status = "ok" if checked.verdict.status == "safe" else checked.verdict.status
        records.append(VariantRecord(variant=variant, status=status, image=checked.image,
                                     ref=checked.ref, verdict=checked.verdict))
    return RenderBatchResult(records=records, warnings=outcome.result.warnings).model_dump(mode="json")


def render_on_gpu_pool(context: df.DurableOrchestrationContext, request: BatchRequest, attempt: int):
    """One try: order the batch (`order_render` queues it for the GPU pool, which scales from
    zero for it) and wait for the pool's answer, the event `rendered-{attempt}`."""
    try:
        yield context.call_activity_with_retry("order_render", ORDER_RETRY, RenderOrder(
            instance_id=context.instance_id, attempt=attempt, batch=request).model_dump(mode="json"))
    except Exception as error:  # storage refused the order every time: this try failed
        return RenderOutcome(attempt=attempt, error=f"the batch could not be ordered: {failure_reason(error)}")
    answer = context.wait_for_external_event(rendered_event(attempt))
    deadline = context.create_timer(context.current_utc_datetime + RENDER_DEADLINE)
    winner = yield context.task_any([answer, deadline])
    if winner is deadline:
        return RenderOutcome(attempt=attempt, error=GAVE_UP)
    deadline.cancel()
    return RenderOutcome.model_validate(answer.result)


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
