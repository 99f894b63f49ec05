"""The shared vocabulary of the pipeline: what a variant, a batch and a verdict are.

Every model here is small JSON, because these are the values that travel through
orchestration history between activities. Images never do: they travel as blob names
("container/path"), see `imagegen.storage.blobs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Scheduler = Literal["dpmpp", "euler", "euler_a", "ddim", "lcm"]
ImageFormat = Literal["png", "jpeg", "webp"]
Fit = Literal["cover", "contain", "stretch"]  # how an image becomes exactly the size asked
SafetyStatus = Literal["safe", "blocked", "unchecked"]
VariantStatus = Literal["ok", "blocked", "failed", "unchecked", "cancelled"]
JobSource = Literal["http", "blob", "schedule"]
JobStatus = Literal["awaiting_review", "completed", "partial", "rejected", "cancelled"]

# The largest `speedups.deepcache` interval: past it the cached features are too stale
# to be useful. Here, not in imagegen.generation.deepcache, so job checks need no torch.
MAX_DEEPCACHE = 10

# The four Azure AI Content Safety harm categories, in the service's spelling.
CATEGORIES: tuple[str, ...] = ("Hate", "SelfHarm", "Sexual", "Violence")


# A job's status in users' words (the API, the CLI, the gallery), and those after which it
# does nothing more.
JOB_STATES: tuple[str, ...] = (
    "queued", "running", "awaiting_review", "completed", "partial", "rejected", "failed", "cancelled")
ENDED_STATES = frozenset({"completed", "partial", "rejected", "failed", "cancelled"})


class OutcomeCounts(BaseModel):
    """How many variants ended each way. The manifest's totals, the job's summary and its
    live progress all count with this one model."""

    ok: int = 0
    blocked: int = 0
    failed: int = 0
    unchecked: int = 0
    cancelled: int = Field(0, description="Variants not made because the job was cancelled")

    def count(self, statuses: "Iterable[VariantStatus]") -> None:
        for status in statuses:
            setattr(self, status, getattr(self, status) + 1)

    @classmethod
    def of(cls, statuses: "Iterable[VariantStatus]") -> dict[str, int]:
        counts = cls()
        counts.count(statuses)
        return counts.model_dump(include=set(OutcomeCounts.model_fields))


class FieldError(BaseModel):
    """One thing wrong with an input: where, which rule, and words a person can act on."""

    path: str  # dotted path into the input, e.g. "variants.sizes[1]"
    rule: str  # short rule id, e.g. "multiple_of_8", "max_variants"
    message: str  # e.g. "`variants.sizes[1]` must be a multiple of 8 per side, got '500x512'"


class JobValidationError(ValueError):
    """A job (or one of its inputs) was rejected; `errors` lists every bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(error.message for error in errors) or "invalid job")


class SigningFailed(Exception):
    """An image could not be signed (C2PA); `reason` says why (it becomes the variant's error).
    `problem`, when set, says it in words safe to show anyone (`GET /api/health`): no
    addresses, nothing of a service's own answer but its HTTP status.
    Here, not in imagegen.checks.provenance, so the Key Vault signer raises it without importing
    the module that imports it."""

    def __init__(self, reason: str, problem: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problem = problem


class AdapterUse(BaseModel):
    """A LoRA adapter a variant is made with: its name, the sha256 of the file checked at
    submit (the file used must still be that one), and its weight."""

    model_config = ConfigDict(frozen=True)

    name: str  # adapters/{name}.safetensors, or {IMAGEGEN_ADAPTERS_DIR}/{name}.safetensors
    sha256: str
    weight: float = 1.0


class Variant(BaseModel):
    """One image to make: a prompt with every setting explicit, its seed included."""

    model_config = ConfigDict(frozen=True)

    id: str  # stable across processes: same job, same ids
    index: int  # position in the job's expansion order
    prompt_index: int
    prompt: str  # the text sent to the model (base prompt with style applied)
    base_prompt: str
    style: str = ""
    negative: str = ""
    seed: int
    width: int
    height: int
    guidance: float
    steps: int
    scheduler: Scheduler
    image: str | None = None  # img2img source as a blob name, e.g. "inputs/sneaker.png"
    strength: float | None = None  # img2img only
    # Inpainting: a mask blob over `image` (white repaints, black keeps); None: plain img2img.
    mask: str | None = None
    format: ImageFormat = "png"
    fit: Fit = "cover"  # the job's `output.fit`: how the image made becomes exactly width x height
    pad_color: str = "#ffffff"  # `output.pad_color`, for `fit: contain`
    # The job's `speedups`: they change the image, so they are part of what makes it.
    deepcache: int = 1  # the UNet's deep features are recomputed every this many steps (1: off)
    tiny_vae: bool = False  # decoded with the tiny VAE (TAESD) instead of the model's own
    # The catalog name of the model that makes it (IMAGEGEN_MODELS); None: the deployment's
    # default (IMAGEGEN_MODEL), as for every variant recorded before jobs could name one.
    model: str | None = None
    # The job's LoRA adapters, applied for the call and removed after (none: the base model).
    adapters: tuple[AdapterUse, ...] = ()

    def call_settings(self) -> tuple[str | None, int, int, int, Scheduler, float, str | None, str | None,
                                     float | None, int, bool, tuple[AdapterUse, ...]]:
        """What one diffusers call takes once for all its images (prompts, negatives and
        seeds are per image): variants equal here can be made in one call. The model
        first: a call, and a batch, never mixes models, nor adapter sets."""
        return (self.model, self.width, self.height, self.steps, self.scheduler, self.guidance,
                self.image, self.mask, self.strength, self.deepcache, self.tiny_vae, self.adapters)


class Batch(BaseModel):
    """Variants that share one GPU call: same model, size, steps, scheduler, source and speed-ups."""

    id: str  # stable, e.g. "b000"
    variants: list[Variant] = Field(min_length=1)


class Verdict(BaseModel):
    """What a safety check said about one text or image.

    `unchecked` means the check could not be made (the provider kept failing): such an
    item is held back and never published as safe.
    """

    status: SafetyStatus
    provider: str  # "azure" | "local"
    severities: dict[str, int] = Field(default_factory=dict)  # category -> 0..7
    blocklist_hits: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)  # human-readable, e.g. "Violence severity 4 >= 4"


class ContentCredentials(BaseModel):
    """The C2PA manifest signed into one image: what identifies it and who signed it."""

    manifest_label: str  # the active manifest's label, e.g. "urn:c2pa:…"
    signer: str  # the signing certificate's subject, e.g. "CN=…,O=…"
