"""The manifest: one JSON per job saying what was asked, what was made and where it is.

Written to `manifests/{job_id}.json` in ONE upload (`imagegen.storage.manifests`), so a reader sees
either the previous whole manifest or the new whole one, never half; a retried write
overwrites. The job's status and totals are computed from the variants, never passed in,
so they cannot disagree with them. Its JSON Schema is `docs/manifest.schema.json`
(regenerate with `python -m imagegen.records.manifest > docs/manifest.schema.json`).

Where a variant's image lives follows from its status (fail closed):
`ok` -> `outputs/` (published); `blocked` and `unchecked` -> `quarantine/` or no image
(an image that could not be checked is never published as safe); `failed` and `cancelled`
-> no image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from imagegen.core.blob_names import check_id, split_ref
from imagegen.core.types import (
    AdapterUse,
    ContentCredentials,
    Fit,
    ImageFormat,
    JobSource,
    JobStatus,
    OutcomeCounts,
    Scheduler,
    Variant,
    VariantStatus,
    Verdict,
)
from imagegen.records.notifications import NotifyRecord

SCHEMA_VERSION: Final = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Keys a manifest file holds that are computed on load, not read.
_COMPUTED = ("status", "totals")


Decision = Literal["approved", "rejected"]


class VariantReview(BaseModel):
    """A reviewer's decision on one variant (review before publish)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reviewer: str | None = Field(description="Who decided; null when the review timed out (`on_timeout`)")
    at: datetime = Field(description="When the decision was made (UTC)")
    note: str = ""
    published: str | None = Field(default=None, description="Blob ref of the approved copy, published/{job}/{variant}.{ext}")

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _published_only_when_approved(self) -> "VariantReview":
        if self.published is not None:
            if self.decision != "approved":
                raise ValueError(f"only an approved image is published, got decision {self.decision!r} "
                                 f"with published={self.published!r}")
            if split_ref(self.published)[0] != "published":
                raise ValueError(f"`published` must be under published/, got {self.published!r}")
        return self


class ManifestReview(BaseModel):
    """The job's review: how long it waits, and how it ended."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["awaiting", "done", "cancelled"]
    timeout: str = Field(description="How long the job waits, e.g. 72h")
    on_timeout: Literal["reject", "approve"]
    deadline: datetime = Field(description="When undecided variants get `on_timeout`")
    ended_by: Literal["all decided", "finish", "timeout", "cancel"] | None = None

    @field_validator("deadline")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class ManifestVariant(BaseModel):
    """One variant: its exact settings, where its image is, and what the safety checks said."""

    model_config = ConfigDict(extra="forbid")

    id: str
    index: int = Field(ge=0)
    # What was asked (everything needed to make the same image again).
    prompt: str
    base_prompt: str = ""
    style: str = ""
    negative: str = ""
    seed: int
    steps: int
    guidance: float
    scheduler: Scheduler
    width: int = Field(description="Requested width in pixels: the stored image's, exactly")
    height: int = Field(description="Requested height in pixels: the stored image's, exactly")
    fit: Fit = Field(default="cover", description="How the image made became exactly width x height (`output.fit`)")
    pad_color: str = Field(default="#ffffff", description="The padding of `fit: contain`")
    strength: float | None = Field(default=None, description="img2img only")
    source_image: str | None = Field(default=None, description="img2img source blob ref, e.g. inputs/a.png")
    mask: str | None = Field(default=None, description="Inpainting mask blob ref over `source_image` (white "
                             "repainted, black kept), e.g. inputs/m.png; null: no mask")
    format: ImageFormat = "png"
    deepcache: int = Field(default=1, ge=1, description="`speedups.deepcache`: deep UNet features reused between full steps (1: off)")
    tiny_vae: bool = Field(default=False, description="`speedups.tiny_vae`: decoded with the tiny VAE (TAESD)")
    model: str | None = Field(default=None, description="Model id (hub id, folder or `tiny`)")
    model_revision: str | None = None
    model_name: str | None = Field(default=None, description="The model's name in the deployment's catalog, as the "
                                   "job chose it; null: the deployment's default model")
    model_family: str | None = Field(default=None, description="The model's family: sd1, sd2, sdxl, sd3 or flux")
    model_config_sha256: str | None = Field(default=None, description="SHA-256 of the model's config "
                                            "(model_index.json and its components' configs, canonical JSON), hex")
    adapters: list[AdapterUse] = Field(default_factory=list, description="The LoRA adapters it was made with: "
                                       "each one's name, the SHA-256 of its .safetensors file (hex) and its weight")
    device: str | None = Field(default=None, description="Where it ran, e.g. cuda, cpu")
    # What came out.
    status: VariantStatus
    blob: str | None = Field(default=None, description="Blob ref of the image, e.g. outputs/job-1/v000.png")
    url: str | None = None
    sha256: str | None = Field(default=None, description="SHA-256 of the stored image bytes, hex")
    image_width: int | None = Field(default=None, description="Width of the stored image")
    image_height: int | None = Field(default=None, description="Height of the stored image")
    generated_width: int | None = Field(default=None, description="Width the model made the image at, before `fit`")
    generated_height: int | None = Field(default=None, description="Height the model made the image at, before `fit`")
    seconds: float | None = Field(default=None, ge=0, description="Generation time of this image")
    started_at: datetime | None = Field(default=None, description="When the GPU call that made this image started (UTC)")
    finished_at: datetime | None = Field(default=None, description="When the GPU call that made this image ended (UTC)")
    input_verdict: Verdict | None = None
    output_verdict: Verdict | None = None
    content_credentials: ContentCredentials | None = Field(
        default=None, description="The C2PA Content Credentials signed into the image (manifest label, "
                                  "signer subject); none when signing is off or failed")
    error: str | None = Field(default=None, description="Why a `failed` variant failed")
    review: VariantReview | None = Field(default=None, description="The reviewer's decision (jobs with review; `ok` variants only)")

    @classmethod
    def from_variant(cls, variant: Variant, **results: Any) -> "ManifestVariant":
        """The entry for `variant`, with the outcome (`status=`, `blob=`, ...) as keywords."""
        # The variant's `model` is the catalog name: the manifest's `model_name` (its `model`
        # is the model's source, as the image records it).
        asked = variant.model_dump(exclude={"prompt_index", "image", "model"})
        asked["source_image"] = variant.image
        results.setdefault("model_name", variant.model)
        return cls(**asked, **results)

    @field_validator("blob", "source_image", "mask")
    @classmethod
    def _valid_ref(cls, value: str | None) -> str | None:
        if value is not None:
            split_ref(value)
        return value

    @model_validator(mode="after")
    def _status_matches_image(self) -> "ManifestVariant":
        where = f"variant `{self.id}`"
        container = split_ref(self.blob)[0] if self.blob else None
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"{where}: `sha256` must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.url is not None and self.blob is None:
            raise ValueError(f"{where}: `url` is set but `blob` is not")
        if self.content_credentials is not None and self.blob is None:
            raise ValueError(f"{where}: `content_credentials` is set but there is no image (`blob`)")
        if self.status == "ok":
            if container != "outputs" or self.sha256 is None:
                raise ValueError(
                    f"{where}: status `ok` needs its image under outputs/ with a `sha256`, "
                    f"got blob={self.blob!r}"
                )
            # Fail closed: only an image the output check called safe is published.
            if self.output_verdict is None or self.output_verdict.status != "safe":
                got = self.output_verdict.status if self.output_verdict else None
                raise ValueError(f"{where}: status `ok` needs a `safe` output verdict, got {got!r}")
            if self.input_verdict is not None and self.input_verdict.status != "safe":
                raise ValueError(
                    f"{where}: status `ok` needs a `safe` input verdict, got {self.input_verdict.status!r}"
                )
        elif self.review is not None:
            raise ValueError(f"{where}: only an `ok` image is reviewed, got status {self.status!r} with a review")
        if self.status in ("blocked", "unchecked"):
            if container not in (None, "quarantine"):
                raise ValueError(
                    f"{where}: a `{self.status}` image must be under quarantine/, got blob={self.blob!r}"
                )
        elif self.status == "cancelled":
            if self.blob is not None:
                raise ValueError(f"{where}: a `cancelled` variant was never made, got blob={self.blob!r}")
        elif self.status == "failed":
            if self.blob is not None:
                raise ValueError(f"{where}: a `failed` variant has no image, got blob={self.blob!r}")
            if not self.error:
                raise ValueError(f"{where}: a `failed` variant needs `error` saying why")
        return self


class Totals(OutcomeCounts):
    variants: int
    images: int = Field(description="Images stored, published or quarantined")
    seconds: float = Field(description="Sum of generation seconds: the GPU's time on this job, model loading apart")
    estimated_cost: float | None = Field(None, description=(
        "`seconds` at the deployment's `gpu_price_per_hour`, in its currency; null when no price is set"))
    approved: int = Field(0, description="Variants a reviewer approved (or the timeout, with on_timeout: approve)")
    rejected: int = Field(0, description="Variants rejected")
    undecided: int = Field(0, description="`ok` variants of a reviewed job with no decision")


class Manifest(BaseModel):
    """A job's record. Build with `build_manifest`; `status` and `totals` are computed."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    job_id: str
    name: str
    source: JobSource
    job: dict[str, Any] = Field(description="The job spec as submitted (after parsing)")
    created_at: datetime
    finished_at: datetime
    reasons: list[str] = Field(default_factory=list, description="Job-level reasons, e.g. why it was rejected")
    warnings: list[str] = Field(default_factory=list, description="e.g. prompts truncated by the tokenizer")
    variants: list[ManifestVariant]
    review: ManifestReview | None = Field(default=None, description="Review before publish; null: the job had none")
    notifications: list[NotifyRecord] = Field(default_factory=list, description="Webhook calls and how they went")
    gpu_price_per_hour: float | None = Field(None, ge=0, description=(
        "The price of a GPU hour the job was costed at (`IMAGEGEN_GPU_PRICE_PER_HOUR`); null: not costed"))

    @field_validator("job_id")
    @classmethod
    def _valid_job_id(cls, value: str) -> str:
        return check_id(value, "job_id")

    @field_validator("created_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # The orchestrator's clock (`context.current_utc_datetime`) is naive UTC.
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        if self.finished_at < self.created_at:
            raise ValueError(
                f"`finished_at` ({self.finished_at.isoformat()}) must not be before "
                f"`created_at` ({self.created_at.isoformat()})"
            )
        seen: set[str] = set()
        for variant in self.variants:
            if variant.id in seen:
                raise ValueError(f"`variants` must have unique ids, got `{variant.id}` twice")
            seen.add(variant.id)
        return self

    # mypy cannot type a decorated property: the ignore is pydantic's documented way (also on `totals`).
    @computed_field(description="awaiting_review: every image made and checked, waiting for reviewers; "  # type: ignore[prop-decorator]
                                "cancelled: cancelled before every variant was made or while awaiting review; "
                                "completed: every variant ok; rejected: nothing was generated "
                                "(every variant blocked or unchecked before generation); else partial")
    @property
    def status(self) -> JobStatus:
        if self.review is not None and self.review.state == "awaiting":
            return "awaiting_review"
        if self.review is not None and self.review.state == "cancelled":
            return "cancelled"
        if any(variant.status == "cancelled" for variant in self.variants):
            return "cancelled"
        if self.variants and all(variant.status == "ok" for variant in self.variants):
            return "completed"
        if all(variant.status in ("blocked", "unchecked") and variant.blob is None for variant in self.variants):
            return "rejected"
        return "partial"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def totals(self) -> Totals:
        count = OutcomeCounts.of(variant.status for variant in self.variants)
        decisions = {"approved": 0, "rejected": 0, "undecided": 0}
        if self.review is not None:
            for variant in self.variants:
                if variant.status == "ok":
                    decisions[variant.review.decision if variant.review else "undecided"] += 1
        return Totals(
            variants=len(self.variants),
            **count, **decisions,
            images=sum(1 for variant in self.variants if variant.blob is not None),
            seconds=(seconds := round(sum(variant.seconds or 0.0 for variant in self.variants), 3)),
            estimated_cost=None if self.gpu_price_per_hour is None else round(seconds / 3600 * self.gpu_price_per_hour, 6),
        )


def build_manifest(*, job_id: str, name: str, source: JobSource, job: Any, created_at: datetime | str,
                   finished_at: datetime | str, variants: Sequence[ManifestVariant | dict[str, Any]],
                   reasons: Sequence[str] = (), warnings: Sequence[str] = (),
                   review: ManifestReview | dict[str, Any] | None = None,
                   notifications: Sequence[NotifyRecord | dict[str, Any]] = (),
                   gpu_price_per_hour: float | None = None) -> Manifest:
    """A job's manifest; times come from the caller (the orchestrator's deterministic clock).

    `job` is the `JobSpec` (or its dict form); status and totals follow from `variants`.
    """
    if hasattr(job, "model_dump"):
        job = job.model_dump(mode="json")
    return Manifest(job_id=job_id, name=name, source=source, job=job, created_at=created_at,
                    finished_at=finished_at, reasons=list(reasons), warnings=list(warnings),
                    variants=list(variants), review=review, notifications=list(notifications),
                    gpu_price_per_hour=gpu_price_per_hour)


def manifest_json(manifest: Manifest) -> bytes:
    return manifest.model_dump_json(indent=2).encode("utf-8")


def parse_manifest(data: bytes | str) -> Manifest:
    """Read a manifest file; its `status` and `totals` are recomputed from the variants."""
    raw = json.loads(data)
    if isinstance(raw, dict):
        for key in _COMPUTED:
            raw.pop(key, None)
    return Manifest.model_validate(raw)


def manifest_schema() -> dict[str, Any]:
    """JSON Schema of a manifest file as written (computed fields included)."""
    schema = Manifest.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


if __name__ == "__main__":
    print(json.dumps(manifest_schema(), indent=2))
