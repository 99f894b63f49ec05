"""The messages of the `generate_batch` orchestration: its input, custom status and output,
and the request and result of every activity and sub-orchestration it calls.

Why this module is in `imagegen/`: both ends of every call import the same model — the
orchestrators (`orchestrations/`) build requests and read results, the activities
(`activities/`, through `imagegen.service.operations`) read requests and build results — and the
layers import only downward (triggers → orchestrations → activities → imagegen). The
lowest layer both can reach is `imagegen`. The models are pure (no I/O), so an
orchestrator may use them while it replays.

These are the JSON shapes recorded in orchestration history, so they stay small: blob
names, never image bytes. A replay of an in-flight instance reads the recorded shapes
back through these models: rename or retype a field and that replay breaks; add new
fields with defaults.

| call | kind | request | result |
|---|---|---|---|
| `generate_batch` | orchestration | `JobRequest` | `JobSummary` (custom status `Progress`) |
| `moderate_text` | activity | `ModerateTextRequest` | `ModerateTextResult` |
| `moderate_image` | activity | `ModerateImageRequest` | `ModerateImageResult` |
| `render_batch` | sub-orchestration | `BatchRequest` | `RenderBatchResult` |
| `order_render` | activity | `RenderOrder` | `RenderOrdered` |
| `rendered-{attempt}` | event, from the GPU pool | | `RenderOutcome` (its `result`: `GenerateImagesResult`) |
| `write_manifest` | activity | `WriteManifestRequest` | `WriteManifestResult` |
| `read_review_passes` | activity | `ReadReviewPassesRequest` | `ReviewPassesResult` |
| `publish_images` | activity | `PublishImagesRequest` | `PublishImagesResult` |
| `notify_job` | activity | `NotifyJobRequest` | `NotifyJobResult` |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from imagegen.core.limits import AUTO_MAX_BATCH
from imagegen.core.types import (
    AdapterUse,
    Batch,
    ContentCredentials,
    JobSource,
    JobStatus,
    OutcomeCounts,
    Variant,
    VariantStatus,
    Verdict,
)
from imagegen.jobs.spec import JobSpec, ReviewSpec
from imagegen.jobs.variants import ModelDefaults
from imagegen.records.manifest import Manifest, ManifestReview, ManifestVariant, VariantReview, build_manifest
from imagegen.records.notifications import NotifyEvent, NotifyRecord
from imagegen.records.review_book import BookedDecision, ReviewCounts, ReviewDecision

Phase = Literal["moderating inputs", "generating", "cancelling", "awaiting review", "publishing",
                "writing manifest", "done"]

if TYPE_CHECKING:
    from imagegen.core.settings import Settings


# -- generate_batch: the orchestration ----------------------------------------------------

class JobRequest(BaseModel):
    """The orchestration's input: the job plus where it came from."""

    job: JobSpec  # validated at submit; re-read against the ceilings only (see imagegen.core.limits)
    source: JobSource = "http"
    origin: str = ""  # the dropped blob's name or the schedule's name
    max_batch: int = Field(default=AUTO_MAX_BATCH, ge=1, le=64)  # variants per GPU activity call
    # Decided at submit from the job and the deployment (`review_of`): the review the job
    # waits for, else None.
    review: ReviewSpec | None = None
    # Whether a webhook is to be called (the job's own `notify.url` or IMAGEGEN_NOTIFY_URL);
    # the operator's URL never travels through history, the activity reads it from settings.
    notify: bool = False
    # Decided at submit from the job's model (imagegen.generation.model_fit): what its variants
    # get where the job says nothing, and what the manifest is to say about it (a speed-up
    # the model cannot use). Jobs recorded before have the SD 1.x defaults they ran with.
    defaults: ModelDefaults = Field(default_factory=ModelDefaults)
    warnings: list[str] = Field(default_factory=list)
    # The job's LoRA adapters as checked at submit (imagegen.service.adapters): each with the
    # sha256 of the file checked, which its batches must still find.
    adapters: list[AdapterUse] = Field(default_factory=list)


def job_request(job: JobSpec, source: JobSource, origin: str = "", *, settings: Settings,
                defaults: ModelDefaults | None = None, warnings: list[str] | None = None,
                adapters: list[AdapterUse] | None = None) -> JobRequest:
    max_batch = settings.max_batch_images or AUTO_MAX_BATCH
    return JobRequest(job=job, source=source, origin=origin, max_batch=max_batch,
                      review=review_of(job, settings), notify=job.notify is not None or bool(settings.notify_url),
                      defaults=defaults or ModelDefaults(), warnings=list(warnings or []),
                      adapters=list(adapters or []))


def review_of(job: JobSpec, settings: Settings) -> ReviewSpec | None:
    """The review this job gets: its own `review`, else the deployment's `IMAGEGEN_REVIEW`
    (`on`: the defaults, 72h then reject); None when it publishes without one."""
    review = job.review if job.review is not None else (ReviewSpec() if settings.review else None)
    return review if review is not None and review.required else None


class JobSummary(OutcomeCounts):
    """The orchestration's output."""

    job_id: str
    name: str
    status: JobStatus
    total: int
    # Jobs with review: how many ok variants were approved, rejected, left undecided.
    approved: int | None = None
    rejected: int | None = None
    undecided: int | None = None
    manifest: str  # blob name
    manifest_url: str
    reasons: list[str] = Field(default_factory=list)  # why a job was rejected or partial
    gpu_seconds: float | None = None  # the GPU's time on the job, model loading apart
    estimated_cost: float | None = None  # at the deployment's IMAGEGEN_GPU_PRICE_PER_HOUR, in its currency


class Progress(OutcomeCounts):
    """The orchestration's customStatus: what a user polling the job sees."""

    phase: Phase
    total: int
    done: int = 0
    # Jobs with review: the decisions so far and when the wait times out (ISO 8601, UTC);
    # None for a job without review.
    review: ReviewCounts | None = None
    deadline: str | None = None
    # Set with phase `done` when a last notification is still to be sent: the job's final
    # status and summary, shown before the orchestration itself completes.
    status: JobStatus | None = None
    summary: JobSummary | None = None
    # While the review takes decisions: which wake-up it waits for next (the event named
    # `review_event(review_wake)`, a new name after each). None when no review is open.
    review_wake: int | None = None

    def add(self, records: list[VariantRecord]) -> None:
        self.done += len(records)
        self.count(record.status for record in records)


# -- moderate_text ------------------------------------------------------------------------

class ModerateTextRequest(BaseModel):
    """Every distinct prompt and negative prompt of a job, checked in one call."""

    job_id: str
    texts: list[str]


class ModerateTextResult(BaseModel):
    verdicts: list[Verdict]  # one per text, in the request's order


# -- moderate_image -----------------------------------------------------------------------

class ModerateImageRequest(BaseModel):
    """Check one img2img source image; it stays where it is. (Generated images are checked
    inside `generate_images`.)"""

    job_id: str
    image: str  # blob name of the image to check: inputs/…


class ModerateImageResult(BaseModel):
    verdict: Verdict
    image: str  # the image's blob name


# -- render_batch (sub-orchestration) and generate_images ---------------------------------

class BatchRequest(BaseModel):
    """One GPU batch of a job: the input of `render_batch` and of `generate_images`."""

    job_id: str
    batch: Batch


class HeldImage(BaseModel):
    """What `generate_images` made for one variant: its two possible blob names, its hash,
    its Content Credentials and when its GPU call ran."""

    variant_id: str
    held: str  # blob name in quarantine/, where an image not checked safe is stored
    publish_to: str  # blob name in outputs/, where an image checked safe is stored
    sha256: str
    width: int
    height: int
    # The size the model made it at, when `fit` made it the size asked (`width`, `height`).
    generated_width: int | None = None
    generated_height: int | None = None
    seconds: float
    model: str  # the model's source: a folder or hub id
    revision: str | None = None
    device: str
    # The catalog name the job chose (None: the default), the model's family and the sha256
    # of its config (model_index.json and the components' configs).
    model_name: str | None = None
    family: str | None = None
    config_sha256: str | None = None
    # The C2PA Content Credentials signed into the stored bytes (`sha256` is of the signed
    # file); None when signing is off. `signing_error` says why signing that was
    # configured failed: such an image is never checked or published (fail closed).
    content_credentials: ContentCredentials | None = None
    signing_error: str | None = None
    # When the GPU call that made it started and ended (UTC, ISO 8601): the job's timeline.
    started_at: str | None = None
    finished_at: str | None = None


class CheckedImage(BaseModel):
    """One image as `generate_images` stored it: checked first, then written once where its
    verdict says (`publish_to` only when `safe`; `held` when blocked or unchecked)."""

    image: HeldImage
    verdict: Verdict
    ref: str


class GenerateImagesResult(BaseModel):
    """The images made, in the batch's order; fewer than asked when the job was cancelled."""

    images: list[CheckedImage]
    warnings: list[str] = Field(default_factory=list)  # e.g. a prompt the text encoder truncates


class VariantRecord(BaseModel):
    """The outcome for one variant, as the manifest lists it."""

    variant: Variant
    status: VariantStatus
    image: HeldImage | None = None
    ref: str | None = None  # where the image is now: outputs/… when ok, quarantine/… otherwise
    verdict: Verdict | None = None
    error: str | None = None


class RenderBatchResult(BaseModel):
    """One record per variant of the batch: `render_batch` never fails, it reports."""

    records: list[VariantRecord]
    warnings: list[str] = Field(default_factory=list)  # generate_images' warnings, passed on


class RenderOrder(BaseModel):
    """One try at rendering a batch on the GPU pool, as `order_render` queues it.

    The GPU pool is a separate app (it scales to zero), so a batch is not an activity: the
    order goes to a blob and its name to the `render-orders` queue; the pool answers with
    the event `rendered_event(attempt)` on `instance_id`, the waiting `render_batch`."""

    instance_id: str
    attempt: int = Field(ge=1)
    batch: BatchRequest


class RenderOrdered(BaseModel):
    order: str  # the order's blob name: renders/…


class RenderOutcome(BaseModel):
    """What the GPU pool answers for one order: the images made, or why it made none."""

    attempt: int
    result: GenerateImagesResult | None = None
    error: str | None = None


def rendered_event(attempt: int) -> str:
    """The event that answers try `attempt` of a `render_batch` (a late answer to an earlier
    try that was given up on is never taken for this one)."""
    return f"rendered-{attempt}"


# -- write_manifest -----------------------------------------------------------------------

class WriteManifestRequest(BaseModel):
    """Everything the manifest records; times come from the orchestrator's replay-safe clock."""

    job_id: str
    job: JobSpec
    source: JobSource
    origin: str = ""
    created: str  # ISO 8601
    finished: str  # ISO 8601
    input_verdicts: dict[str, Verdict]  # prompt text or source image blob name -> verdict
    records: list[VariantRecord]
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # for the manifest, e.g. truncated prompts
    review: ManifestReview | None = None  # None: no review
    decisions: dict[str, BookedDecision] = Field(default_factory=dict)  # variant id -> its decision


class WriteManifestResult(BaseModel):
    """Where the manifest is and the job status it computed, so the orchestration reports
    the same status the manifest holds."""

    manifest: str  # blob name
    url: str
    status: JobStatus
    gpu_seconds: float = 0.0  # the GPU's time on the job (the manifest's totals.seconds)
    estimated_cost: float | None = None  # at IMAGEGEN_GPU_PRICE_PER_HOUR; None when no price is set
    # (Results recorded before `totals` was dropped also hold the manifest's totals: ignored.)


# -- read_review_passes -------------------------------------------------------------------

def review_event(wake: int) -> str:
    """The name of the review's `wake`-th wake-up event (see orchestrations/review.py)."""
    return f"review-{wake}"


class ReadReviewPassesRequest(BaseModel):
    """The review passes recorded for a job after the first `after` (the ones not read yet)."""

    job_id: str
    after: int = Field(ge=0)


class ReviewPassesResult(BaseModel):
    passes: list[ReviewDecision]  # in the order the route recorded them


# -- publish_images -----------------------------------------------------------------------

class PublishImagesRequest(BaseModel):
    """Approved images to publish: variant id -> its image in outputs/."""

    job_id: str
    images: dict[str, str]


class PublishImagesResult(BaseModel):
    published: dict[str, str]  # variant id -> its copy in published/


# -- notify_job ---------------------------------------------------------------------------

class NotifyJobRequest(BaseModel):
    """A webhook call about a job. `url` is the job's own webhook; None: the deployment's
    IMAGEGEN_NOTIFY_URL, which the activity reads from settings (it never enters history)."""

    job_id: str
    name: str
    event: NotifyEvent
    status: str
    counts: dict[str, int]
    url: str | None = None


class NotifyJobResult(BaseModel):
    record: NotifyRecord | None = None  # None: no webhook to call


def manifest_for(request: WriteManifestRequest, url_of: Callable[[str], str],
                 gpu_price_per_hour: float | None = None) -> Manifest:
    """The manifest `write_manifest` uploads for this request (`url_of`: a blob name's URL),
    costed at `gpu_price_per_hour` when the deployment sets one."""
    variants = []
    for record in request.records:
        image = record.image
        decision = request.decisions.get(record.variant.id)
        variants.append(ManifestVariant.from_variant(
            record.variant, status=record.status, error=record.error,
            blob=record.ref, url=url_of(record.ref) if record.ref else None,
            sha256=image.sha256 if image else None,
            image_width=image.width if image else None, image_height=image.height if image else None,
            generated_width=image.generated_width if image else None,
            generated_height=image.generated_height if image else None,
            seconds=image.seconds if image else None,
            model=image.model if image else None, model_revision=image.revision if image else None,
            model_name=image.model_name if image and image.model_name else record.variant.model,
            model_family=image.family if image else None,
            model_config_sha256=image.config_sha256 if image else None,
            device=image.device if image else None,
            content_credentials=image.content_credentials if image else None,
            started_at=image.started_at if image else None, finished_at=image.finished_at if image else None,
            input_verdict=input_verdict(record.variant, request.input_verdicts), output_verdict=record.verdict,
            review=VariantReview.model_validate(decision.model_dump()) if decision else None,
        ))
    return build_manifest(
        job_id=request.job_id, name=request.job.name,
        source=request.source, job=redact_notify_url(request.job.model_dump(mode="json")),
        created_at=request.created, finished_at=request.finished,
        variants=variants, reasons=request.reasons, warnings=request.warnings, review=request.review,
        gpu_price_per_hour=gpu_price_per_hour,
    )


def redact_notify_url(job: dict[str, Any]) -> dict[str, Any]:
    """The job as the manifest records it: a webhook URL often carries its secret in the
    path (Slack, Teams), so only its scheme and host are kept."""
    url = (job.get("notify") or {}).get("url")
    if not url:
        return job
    parts = urlsplit(url)
    return {**job, "notify": {"url": f"{parts.scheme}://{parts.hostname}/…"}}


def input_verdict(variant: Variant, verdicts: dict[str, Verdict]) -> Verdict | None:
    """The verdict on a variant's inputs: the first of prompt, negative, image and mask not safe."""
    checked = [verdicts[key] for key in (variant.prompt, variant.negative, variant.image, variant.mask)
               if key in verdicts]
    return next((v for v in checked if v.status != "safe"), checked[0] if checked else None)


def input_rejections(texts: list[str], text_verdicts: list[Verdict],
                     images: list[str], image_verdicts: list[Verdict]) -> list[str]:
    """Reasons to reject a job before generating anything: any input not checked safe."""
    labels = [f"prompt {text!r}" for text in texts] + [f"image {ref}" for ref in images]
    reasons: list[str] = []
    for label, verdict in zip(labels, [*text_verdicts, *image_verdicts]):
        if verdict.status != "safe":
            why = "; ".join(verdict.reasons) or verdict.status
            reasons.append(f"{label} is {verdict.status}: {why}")
    return reasons
