"""What the HTTP API answers, as pydantic models: the routes build their bodies from these,
and `triggers.openapi` describes the API from the same models.

Request bodies are `imagegen.jobs.spec.JobSpec` (a job) and `imagegen.jobs.foundry_body.FoundryRequest`
(the Foundry / OpenAI images body); the manifest is `imagegen.records.manifest.Manifest`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from imagegen.core.types import FieldError


class Problem(BaseModel):
    """An error as RFC 9457 problem details: what went wrong, and every bad field with its rule."""

    model_config = ConfigDict(extra="allow")  # e.g. `code`, `jobId`

    type: str = Field("about:blank", description="Always `about:blank`: `title` says what happened")
    title: str = Field(description="Short, the same for every error of its kind")
    status: int = Field(ge=400, le=599, description="The HTTP status")
    detail: str = Field(description="What went wrong in this request, in words a person can act on")
    errors: list[FieldError] | None = Field(None, description="Every bad field: path, rule and message")
    code: str | None = Field(None, description="A machine-readable cause where clients need one "
                             "(`content_filter`, `generation_failed`, `safety_unavailable`, `invalid_api_key`)")
    jobId: str | None = Field(None, description="The job the error is about, when one was started")


class JobLinks(BaseModel):
    self: str
    manifest: str
    cancel: str


class JobView(BaseModel):
    """A job as a user sees it: its state, progress, and when done its summary."""

    id: str
    name: str
    source: str = Field(description="`http`, `blob` or `schedule`")
    origin: str = Field(description="The dropped blob or schedule that started it; empty for HTTP")
    status: str = Field(description="queued, running, suspended, awaiting_review, completed, partial, "
                        "rejected, cancelled or failed")
    runtimeStatus: str = Field(description="The orchestration's runtime status")
    createdTime: str | None
    lastUpdatedTime: str | None
    progress: Any = Field(None, description="The orchestration's custom status while it runs")
    links: JobLinks
    summary: dict[str, Any] | None = Field(None, description="When completed: counts and the manifest URL")
    manifestUrl: str | None = None
    error: Any = Field(None, description="When failed: the orchestration's failure")


class JobList(BaseModel):
    jobs: list[JobView]
    continuationToken: str | None = Field(description="Pass as `continuationToken` for the next page; null on the last")


class JobAccepted(BaseModel):
    """202 for a started job: our job URL and the Durable Functions status URLs."""

    model_config = ConfigDict(extra="allow")

    id: str
    jobId: str
    jobUrl: str
    statusQueryGetUri: str | None = None


class CancelAccepted(BaseModel):
    id: str
    status: Literal["cancelling"]


class ReviewAccepted(BaseModel):
    """202 for one pass of a review, as taken."""

    id: str
    status: Literal["awaiting_review"]
    reviewer: str | None
    approve: list[str]
    reject: list[str]
    finish: bool


class ModelSummary(BaseModel):
    """A model of the catalog, as health lists it."""

    name: str = Field(description="What a job names in `model`")
    family: str | None = Field(description="sd1, sd2, sdxl, sd3 or flux; null when its files cannot be read")
    default: bool = Field(description="Whether jobs that name no model get it")
    loaded: bool = Field(description="Whether this process holds its weights now")


class Alive(BaseModel):
    """The host and its Python worker answer: what the platform's probes ask."""

    status: Literal["ok"]


class Health(BaseModel):
    """What the worker runs on, and whether it can do its work: `unhealthy` (503) while the
    C2PA signer cannot sign, with the problem in words safe to show anyone."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "unhealthy"]
    problems: list[str] = Field(default_factory=list, description="Why the worker is unhealthy; empty when ok")
    model: str
    device: str
    loaded: bool = Field(description="Whether the default model is loaded")
    models: list[ModelSummary] = Field(default_factory=list, description="Every model a job may name")
    safety_provider: str
    c2pa_signer: str = Field(description="`local`, `keyvault` or `off` (C2PA_SIGNER)")
    c2pa_certificate: Literal["self-signed", "issued", "development"] | None = Field(
        None, description="What signs: a self-signed Key Vault certificate (valid, untrusted), one a CA issued, "
                          "the local development CA; null when signing is off or the signer cannot sign")


class ModelDefaultsView(BaseModel):
    steps: int
    guidance: float
    size: str
    scheduler: str
    deepcache: bool = Field(description="Whether `speedups.deepcache` applies (a UNet model)")


class ModelView(ModelSummary):
    """A model of the catalog: where it is, its family, and what a job that says nothing gets."""

    source: str = Field(description="The model folder or hub id")
    revision: str | None
    family_title: str | None = Field(None, description="e.g. `Stable Diffusion 3 / 3.5`")
    flavour: str | None = Field(description="The member of the family, e.g. `3.5-large`, `schnell`, `turbo`")
    tiny_vae: bool = Field(description="Whether jobs may ask for `speedups.tiny_vae` on it")
    defaults: ModelDefaultsView | None = Field(description="What a job's variants get where the job says nothing")
    problem: str | None = Field(None, description="Why its family could not be read (its files are missing)")


class ModelList(BaseModel):
    """`GET /api/models`: the models a job may name, the default first."""

    default: str = Field(description="The model of a job that names none")
    models: list[ModelView]


class FoundryImage(BaseModel):
    b64_json: str = Field(description="The image, base64")
    seed: int
    revised_prompt: str = Field(description="The prompt the model was given")
    content_type: str
    url: str | None = Field(None, description="With `response_format: url`: the image under the jobs API")


class FoundryResponse(BaseModel):
    """Both shapes at once: Azure AI Foundry's Stability models' and OpenAI's images API."""

    image: str = Field(description="Foundry: the first image, base64")
    finish_reason: Literal["SUCCESS"] = Field(description="Foundry: why generation stopped")
    seed: int = Field(description="Foundry: the first image's seed")
    created: int = Field(description="OpenAI: when the images were made, Unix seconds")
    data: list[FoundryImage] = Field(min_length=1, description="OpenAI: every image")
    jobId: str


class FoundryAccepted(BaseModel):
    """202: the images were not ready within `timeout`; follow the job."""

    id: str
    jobId: str
    jobUrl: str
    status: Literal["running"]
