"""Job specs: what a user asks for, checked, and expanded into the variants to make.

A job is one or more base prompts and the axes to fan them out on (styles, sizes,
guidance, seeds); `parse_job` reads it from JSON or YAML and checks every field against
`Limits`. `imagegen.jobs.variants` expands a job into its variants and GPU batches. Everything
here is pure and deterministic (no clocks, no randomness, no I/O), because the
orchestrator re-reads the job while it replays. docs/jobs.md is the user-facing
reference for the format; `python -m imagegen.jobs.check_job` checks a file or prints the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from imagegen.core.documents import load_document
from imagegen.core.field_errors import fail, field_errors, show_value
from imagegen.core.limits import (
    DEFAULT_LIMITS,
    SIZE_PRESETS,
    Guidance,
    ImageName,
    Limits,
    PromptText,
    Seeds,
    ShortText,
    Size,
    Strength,
    check_list,
    limits_of,
    parse_size,
)
from imagegen.core.storable_text import storable_document
from imagegen.core.types import MAX_DEEPCACHE, FieldError, Fit, ImageFormat, JobValidationError, Scheduler

__all__ = [
    "AdapterSpec", "JobSpec", "Limits", "NotifySpec", "OutputSpec", "PromptSpec", "ReviewSpec", "SpeedupSpec",
    "VariantAxes", "job_schema", "parse_job", "with_mask", "with_source_image",
]

DEFAULT_STRENGTH = 0.8  # diffusers' img2img default: keep 20% of the source's structure
DEFAULT_MASK_STRENGTH = 1.0  # diffusers' inpainting default: the masked region is drawn anew
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


# --- the models ---------------------------------------------------------------------------

_STRICT = ConfigDict(strict=True, extra="forbid")  # '25' is not 25; unknown keys are typos


class PromptSpec(BaseModel):
    """One base prompt; with `image` it is img2img from a blob in the `inputs` container."""

    model_config = _STRICT

    text: PromptText = Field(description="The prompt. Styles are appended as `text, style`.")
    negative: ShortText = Field("", description="What the image should not show.")
    image: ImageName | None = Field(
        None, description="img2img source: a blob name in the `inputs` container, never a URL."
    )
    strength: Strength | None = Field(
        None, description=f"How far to move from `image`, in (0, 1]; default {DEFAULT_STRENGTH}, "
                          f"{DEFAULT_MASK_STRENGTH} with `mask`. Needs `image`."
    )
    mask: ImageName | None = Field(
        None, description="Inpainting mask over `image`, same rules as `image` (a blob name, or an inline "
                          "`data:` URL in an HTTP job): white is repainted, black kept; resized to the image. "
                          "Needs `image`."
    )

    @model_validator(mode="after")
    def _strength_needs_image(self) -> "PromptSpec":
        if self.strength is not None and self.image is None:
            raise fail(
                "strength_without_image",
                f"`{{path}}` is only used with `image` (img2img), got {show_value(self.strength)} "
                "without an image; add `image` or remove `strength`",
                at="strength",
            )
        if self.mask is not None and self.image is None:
            raise fail(
                "mask_without_image",
                f"`{{path}}` is a mask over `image` (inpainting), got {show_value(self.mask)} without an "
                "image; add `image` or remove `mask`",
                at="mask",
            )
        return self


class VariantAxes(BaseModel):
    """The fan-out: every combination of styles x sizes x guidance x seeds, per prompt.

    `sizes`, `guidance`, `steps` and `scheduler` left out (or null) get the job's model's
    defaults (docs/models.md: 512x512, 7.5, 25, dpmpp for SD 1.x; 1024x1024, 3.5, 28, euler
    for FLUX.1 dev; ...), filled in when the job is submitted."""

    model_config = _STRICT

    seeds: Seeds = Field(1, description="A count (seeds derived from the job) or a list of seeds.")
    styles: list[ShortText] = Field([""], description="Appended to each prompt; '' means as written.")
    sizes: list[Size] | None = Field(None, description=(
        "WIDTHxHEIGHT in pixels, delivered exactly (see `output.fit`), or a preset: "
        + ", ".join(f"{name} ({size})" for name, size in SIZE_PRESETS.items())
        + "; default: the model's native square (512x512 for SD 1.x, 1024x1024 for SDXL, SD 3 and FLUX.1)."))
    guidance: list[Guidance] | None = Field(
        None, description="Guidance scales (FLUX.1 dev: its distilled guidance); default: the model's.")
    steps: int | None = Field(None, description="Denoising steps per image; default: the model's.")
    scheduler: Scheduler | None = Field(
        None, description="The sampler; default: the model's (dpmpp for SD 1.x/2.x, euler for SDXL, SD 3 and "
        "FLUX.1, which run only euler).")

    @field_validator("seeds")
    @classmethod
    def _seed_list(cls, value: int | list[int], info: ValidationInfo) -> int | list[int]:
        if isinstance(value, list):
            if not value:
                raise fail("empty", "`{path}` must list at least one seed (or be a count)")
            check_list(value, limits_of(info).max_variants, "max_variants")
        return value

    @field_validator("styles", "sizes", "guidance")
    @classmethod
    def _lists(cls, values: list | None, info: ValidationInfo) -> list | None:
        if values is None:  # the model's default
            return None
        if not values:
            raise fail("empty", "`{path}` must have at least one entry")
        limits = limits_of(info)
        most = limits.max_styles if info.field_name == "styles" else limits.max_variants
        limit_name = "max_styles" if info.field_name == "styles" else "max_variants"
        # '0512x512' is '512x512' spelled another way: compare sizes as numbers.
        key = parse_size if info.field_name == "sizes" else (lambda value: value)
        return check_list(values, most, limit_name, key)

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int | None, info: ValidationInfo) -> int | None:
        limits = limits_of(info)
        if value is not None and not limits.min_steps <= value <= limits.max_steps:
            raise fail(
                "steps_range",
                f"`{{path}}` must be between {limits.min_steps} and {limits.max_steps}, got {show_value(value)}",
            )
        return value

    def seed_count(self) -> int:
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)


class SpeedupSpec(BaseModel):
    """Speed-ups that change the image a little. Each is off unless the job turns it on,
    and none changes the seeds, so the same job with and without them can be compared."""

    model_config = _STRICT

    deepcache: int = Field(
        1, description=f"DeepCache: run the UNet's deep layers only every N steps and reuse them in between; "
        f"1 is off, 2 to {MAX_DEEPCACHE} trade detail for speed.",
    )
    tiny_vae: bool = Field(
        False, description="Decode with a tiny VAE (TAESD) instead of the model's own: faster, a little "
        "less fine detail. Needs a deployment with `IMAGEGEN_TINY_VAE` set.",
    )

    @field_validator("deepcache")
    @classmethod
    def _deepcache(cls, value: int) -> int:
        if not 1 <= value <= MAX_DEEPCACHE:
            raise fail(
                "deepcache_range",
                f"`{{path}}` must be between 1 (off) and {MAX_DEEPCACHE}, got {show_value(value)}",
            )
        return value

    @field_validator("tiny_vae")
    @classmethod
    def _tiny_vae(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not limits_of(info).tiny_vae:
            raise fail(
                "tiny_vae_unavailable",
                "`{path}` needs a tiny VAE and this deployment has none (setting `IMAGEGEN_TINY_VAE`); "
                "remove it or ask the operator to set one",
            )
        return value


MAX_ADAPTERS = 4  # LoRA adapters one job may apply at once
ADAPTER_WEIGHT_RANGE = (-2.0, 2.0)  # past these a LoRA's effect overwhelms the model


class AdapterSpec(BaseModel):
    """A LoRA adapter to apply: a `.safetensors` file in the `adapters` container (or the
    deployment's `IMAGEGEN_ADAPTERS_DIR`), and how strongly. Whether it exists and fits the
    job's model is checked at submit, where the files are."""

    model_config = _STRICT

    name: str = Field(description="The adapter's name: `adapters/NAME.safetensors` (a-z, 0-9, '-', '_', '.').")
    weight: float = Field(1.0, description=f"How strongly it applies, from {ADAPTER_WEIGHT_RANGE[0]:g} to "
                          f"{ADAPTER_WEIGHT_RANGE[1]:g}; 0 leaves the model as it is, 1 as trained.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value) or value.endswith(".safetensors"):
            raise fail("adapter_name", "`{path}` must be an adapter's name (a-z, 0-9, '-', '_', '.', without "
                       f"`.safetensors`; see `imagegen adapters list`), got {show_value(value)}")
        return value

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> Any:
        low, high = ADAPTER_WEIGHT_RANGE
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # 1 is 1.0, as everywhere a weight is written by hand
        if isinstance(value, float) and not low <= value <= high:
            raise fail("adapter_weight", f"`{{path}}` must be from {low:g} to {high:g}, got {show_value(value)}")
        return value


class OutputSpec(BaseModel):
    model_config = _STRICT

    format: ImageFormat = Field("png", description="Image file format.")
    fit: Fit = Field("cover", description=(
        "How an image made at the model's size becomes exactly the size asked: `cover` scales it to fill and "
        "crops the middle, `contain` scales it to fit and pads with `pad_color`, `stretch` resizes it."))
    pad_color: str = Field("#ffffff", description="The padding of `fit: contain`, as #rrggbb.",
                           pattern=r"^#[0-9a-fA-F]{6}$")


# A review waits at most 30 days: past that nobody is coming back to it, and the wait holds
# an orchestration (and its images, unpublished) open.
DURATION_PATTERN = re.compile(r"([0-9]{1,7})([smhd])")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_REVIEW_SECONDS = 30 * 86400


def duration_seconds(text: str) -> int:
    """'72h' -> 259200. The text must match DURATION_PATTERN (ReviewSpec checked it)."""
    match = DURATION_PATTERN.fullmatch(text)
    if match is None:
        raise ValueError(f"a duration looks like '90s', '30m', '72h' or '7d', got {text!r}")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


class ReviewSpec(BaseModel):
    """Review before publish: the job waits for people to approve or reject its images."""

    model_config = _STRICT

    required: bool = Field(True, description="Wait for a reviewer before publishing anything.")
    timeout: str = Field("72h", description="How long to wait: a whole number and s, m, h or d; at most 30d.")
    on_timeout: Literal["reject", "approve"] = Field(
        "reject", description="What variants nobody decided on get when the wait times out."
    )

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        match = DURATION_PATTERN.fullmatch(value)
        if match is None:
            raise fail("duration_format", "`{path}` must be a whole number and a unit s, m, h or d, like "
                       f"'72h' or '30m', got {show_value(value)}")
        seconds = duration_seconds(value)
        if not 1 <= seconds <= MAX_REVIEW_SECONDS:
            raise fail("timeout_range", f"`{{path}}` must be from 1s to 30d, got {show_value(value)}")
        return value

    def timeout_seconds(self) -> int:
        return duration_seconds(self.timeout)


class NotifySpec(BaseModel):
    """A webhook called when the job starts waiting for review and when it ends.

    Only the URL's shape is checked here (pure); which hosts a deployment allows and what
    they resolve to is checked at submit (`imagegen.jobs.webhook_urls.check_job_url`)."""

    model_config = _STRICT

    url: str = Field(description="An https URL on a host the deployment allows (`IMAGEGEN_NOTIFY_HOSTS`).")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if len(value) > 2000:
            raise fail("url_length", f"`{{path}}` must be at most 2,000 characters, got {len(value):,}")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise fail("url_format", f"`{{path}}` must be an https URL, got {show_value(value)}") from None
        if parts.scheme != "https":
            raise fail("https_only", f"`{{path}}` must be an https URL, got {show_value(value)}")
        if not parts.hostname:
            raise fail("url_format", f"`{{path}}` must name a host, got {show_value(value)}")
        if parts.username is not None or parts.password is not None:
            raise fail("url_credentials", "`{path}` must not carry a user name or password before the host")
        return value


class JobSpec(BaseModel):
    """A whole job: `name`, `prompts`, `variants` (the fan-out), `speedups` and `output`."""

    model_config = ConfigDict(strict=True, extra="forbid", title="Durable Diffusion job")

    name: str = Field(
        description="Used in blob paths: a-z, 0-9, '-', '_', '.'; starts with a letter or digit; "
        "at most 64 characters. Defaults to the job file's name.",
        pattern=NAME_PATTERN.pattern,
    )
    model: str | None = Field(
        None, description="The model that makes the images: a name in the deployment's catalog (`GET /api/models`); "
        "unset: the deployment's default model.",
    )
    prompts: list[PromptSpec] = Field(min_length=1, description="One or more base prompts.")
    adapters: list[AdapterSpec] = Field(default_factory=list, description=(
        f"LoRA adapters (brand styles, products) applied to every image, at most {MAX_ADAPTERS}, each by name "
        "and weight; they must fit the job's model (docs/models.md, Adapters)."))
    variants: VariantAxes = Field(default_factory=VariantAxes)
    speedups: SpeedupSpec = Field(default_factory=SpeedupSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    review: ReviewSpec | None = Field(
        None, description="Wait for people to approve images before publishing; unset: the deployment's "
        "default (`IMAGEGEN_REVIEW`, off unless the operator turned it on).",
    )
    notify: NotifySpec | None = Field(
        None, description="A webhook called when the job awaits review and when it ends; unset: the "
        "deployment's `IMAGEGEN_NOTIFY_URL`, if any.",
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if isinstance(value, str) and not NAME_PATTERN.fullmatch(value):
            hint = slugify(value)
            raise fail(
                "name_format",
                "`{path}` is used in blob paths, so it may use only a-z, 0-9, '-', '_' and '.', "
                f"start with a letter or digit and be at most 64 characters, got {show_value(value)}"
                + (f"; try {hint!r}" if hint != value else ""),
            )
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        # Whether the name is in the catalog is checked at submit, where the catalog is.
        if value is not None and not NAME_PATTERN.fullmatch(value):
            raise fail("model_name", "`{path}` must be the name of a model in the deployment's catalog "
                       f"(a-z, 0-9, '-', '_', '.'; see GET /api/models), got {show_value(value)}")
        return value

    @field_validator("adapters")
    @classmethod
    def _adapters(cls, values: list[AdapterSpec]) -> list[AdapterSpec]:
        if len(values) > MAX_ADAPTERS:
            raise fail("max_adapters", f"`{{path}}` may have at most {MAX_ADAPTERS} entries, got {len(values):,}")
        names = [adapter.name for adapter in values]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise fail("duplicate", f"`{{path}}` names adapter {name!r} twice; give it once with the weight wanted")
        return values

    @field_validator("prompts")
    @classmethod
    def _prompt_count(cls, values: list[PromptSpec], info: ValidationInfo) -> list[PromptSpec]:
        most = limits_of(info).max_prompts
        if len(values) > most:
            raise fail("max_prompts", f"`{{path}}` may have at most {most} entries, got {len(values):,}")
        return values

    @model_validator(mode="after")
    def _variant_count(self, info: ValidationInfo) -> "JobSpec":
        limit = limits_of(info).max_variants
        axes = self.variants
        # An axis left to the model's default is one value.
        factors = [len(self.prompts), len(axes.styles), len(axes.sizes or [""]), len(axes.guidance or [0.0]),
                   axes.seed_count()]
        total = 1
        for factor in factors:
            total *= factor
        if total > limit:
            raise fail(
                "max_variants",
                f"`{{path}}` expands to {total:,} variants ({factors[0]} prompts x {factors[1]} styles "
                f"x {factors[2]} sizes x {factors[3]} guidance x {factors[4]} seeds); the limit is {limit}",
                at="variants",
            )
        return self


def slugify(text: str, limit: int = 64) -> str:
    """A usable name from any text, at most `limit` characters: 'Spring Campaign 2024' ->
    'spring-campaign-2024'. Job names, and the job-name part of instance ids, are made so."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    slug = re.sub(r"^[^a-z0-9]+", "", slug)[:limit].rstrip("-.")
    return slug or "job"


# --- reading a job file ---------------------------------------------------------------------


def parse_job(data: str | bytes | dict, *, filename: str | None = None, limits: Limits | None = None) -> JobSpec:
    """Read and check a job; raise one JobValidationError listing every problem.

    `name` defaults to the file's name (slugified) when the job has none and `filename`
    is given; without either, `name` is reported as missing.
    """
    limits = limits or DEFAULT_LIMITS
    if isinstance(data, (bytes, bytearray)):
        if len(data) > limits.max_job_bytes:
            raise JobValidationError([FieldError(
                path="", rule="max_job_bytes",
                message=f"the job is {len(data):,} bytes; the limit is {limits.max_job_bytes:,} bytes",
            )])
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise JobValidationError([FieldError(
                path="", rule="encoding", message=f"the job must be UTF-8 text: byte {error.start} is not",
            )]) from None
    if isinstance(data, str):
        if len(data) > limits.max_job_bytes:
            raise JobValidationError([FieldError(
                path="", rule="max_job_bytes",
                message=f"the job is {len(data):,} characters; the limit is {limits.max_job_bytes:,} bytes",
            )])
        data = load_document(data, filename=filename)
    data = storable_document(data)  # before any message repeats a field's text
    if data is None:
        raise JobValidationError([FieldError(path="", rule="empty", message="the job is empty")])
    if not isinstance(data, dict):
        raise JobValidationError([FieldError(
            path="", rule="type",
            message=f"the job must be a mapping with `name`, `prompts`, `variants`, `speedups` and `output`, got {show_value(data)}",
        )])
    if "name" not in data and filename:
        stem = re.split(r"[/\\]", filename)[-1].rsplit(".", 1)[0]
        data = {**data, "name": slugify(stem)}
    try:
        return JobSpec.model_validate(data, context={"limits": limits})
    except ValidationError as error:
        raise JobValidationError(field_errors(error, JobSpec)) from None


def with_source_image(job: JobSpec, image: str, *, prompt_index: int = 0) -> JobSpec:
    """The job with `prompts[prompt_index].image` set (after the source was stored)."""
    data = job.model_dump(mode="json")
    data["prompts"][prompt_index]["image"] = image
    try:
        return JobSpec.model_validate(data)
    except ValidationError as error:
        raise JobValidationError(field_errors(error, JobSpec)) from None


# --- the JSON Schema ----------------------------------------------------------------------------


def job_schema() -> dict:
    """The JSON Schema of a job file (docs/job.schema.json), for editors and other tools."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render_schema() -> str:
    return json.dumps(job_schema(), indent=2, ensure_ascii=False) + "\n"


def with_mask(job: JobSpec, mask: str, *, prompt_index: int = 0) -> JobSpec:
    """The job with `prompts[prompt_index].mask` set (after the mask was stored)."""
    data = job.model_dump(mode="json")
    data["prompts"][prompt_index]["mask"] = mask
    try:
        return JobSpec.model_validate(data)
    except ValidationError as error:
        raise JobValidationError(field_errors(error, JobSpec)) from None
