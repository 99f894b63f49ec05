"""What travels through the `generate_batch` orchestration: small JSON, blob names, no images.

These models are pure (no I/O), so the orchestrator may use them while it replays.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from imagegen.settings import AUTO_MAX_BATCH
from imagegen.types import Batch, JobSource, JobStatus, Variant, VariantStatus, Verdict

Phase = Literal["moderating inputs", "generating", "cancelling", "writing manifest", "done"]


class JobRequest(BaseModel):
    """The orchestration's input: the job as JSON plus where it came from."""

    job: dict  # a validated JobSpec, as JSON
    source: JobSource = "http"
    origin: str = ""  # the dropped blob's name or the schedule's name
    max_batch: int = Field(default=AUTO_MAX_BATCH, ge=1, le=64)  # variants per GPU activity call
    # Decided at submit from the job and the deployment (`intake.review_of`): a ReviewSpec as
    # JSON when the job waits for a reviewer, else None.
    review: dict | None = None
    # Whether a webhook is to be called (the job's own `notify.url` or IMAGEGEN_NOTIFY_URL);
    # the operator's URL never travels through history, the activity reads it from settings.
    notify: bool = False


class RenderRequest(BaseModel):
    """Input of the `render_batch` sub-orchestration and the `generate_images` activity."""

    job_id: str
    batch: Batch


class GeneratedImage(BaseModel):
    """What `generate_images` made for one variant: a held image, not yet checked."""

    variant_id: str
    held: str  # blob name in quarantine/, where every image waits until it is checked
    publish: str  # blob name in outputs/, where it goes when checked safe
    sha256: str
    width: int
    height: int
    seconds: float
    model: str
    revision: str | None = None
    device: str


class VariantRecord(BaseModel):
    """The outcome for one variant, as the manifest lists it."""

    variant: Variant
    status: VariantStatus
    image: GeneratedImage | None = None
    ref: str | None = None  # where the image is now: outputs/… when ok, quarantine/… otherwise
    verdict: Verdict | None = None
    error: str | None = None


class Progress(BaseModel):
    """The orchestration's customStatus: what a user polling the job sees."""

    phase: Phase
    total: int
    done: int = 0
    ok: int = 0
    blocked: int = 0
    failed: int = 0
    unchecked: int = 0
    cancelled: int = 0

    def add(self, records: list[VariantRecord]) -> None:
        for record in records:
            self.done += 1
            setattr(self, record.status, getattr(self, record.status) + 1)


class JobSummary(BaseModel):
    """The orchestration's output."""

    job_id: str
    name: str
    status: JobStatus
    total: int
    ok: int
    blocked: int
    failed: int
    unchecked: int
    cancelled: int = 0
    manifest: str  # blob name
    manifest_url: str
    reasons: list[str] = Field(default_factory=list)  # why a job was rejected or partial


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
