"""What a job and its inputs may be: the configurable `Limits`, and the check of each job
field against them (as pydantic types the job models in `imagegen.jobs.spec` are built from).

Every limit is checked before anything runs (`imagegen.jobs.spec.parse_job` for the job file,
`imagegen.jobs.source_image_checks.check_source_image` for an img2img source), so a job that would take the GPU for an hour
or a 50,000-pixel image is turned away with a message instead of an out-of-memory crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo

from imagegen.core.field_errors import fail, show_value

# The most any deployment may configure. A job re-read without limits (the orchestrator's
# `JobSpec.model_validate(job)` of a job parse_job already checked) is held to these, so
# it never fails where it passed, whatever IMAGEGEN_MAX_* said, and still cannot ask for
# a billion images.
CEILING_VARIANTS, CEILING_TEXT, CEILING_STEPS, CEILING_SIDE = 10_000, 100_000, 1_000, 16_384

if TYPE_CHECKING:
    from imagegen.core.settings import Settings

# Variants per GPU activity when `IMAGEGEN_MAX_BATCH=auto`. The orchestration cannot see
# the GPU, so it hands out the most one call should take (16, the largest batch that
# bench/gpu_throughput.py measures) and `generate_images` splits that by free GPU memory.
AUTO_MAX_BATCH = 16

# The most variants one GPU activity may take (the orchestration's JobRequest.max_batch).
MOST_MAX_BATCH = 64


class Limits(BaseModel):
    """The most a job may ask for. Defaults match `imagegen.core.settings.SETTINGS`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_variants: int = Field(64, ge=1, le=CEILING_VARIANTS, description="Most variants one job may expand to")
    max_prompts: int = Field(32, ge=1, le=CEILING_VARIANTS, description="Most entries in `prompts`")
    max_styles: int = Field(16, ge=1, le=CEILING_VARIANTS, description="Most entries in `variants.styles`")
    max_prompt_chars: int = Field(2000, ge=1, le=CEILING_TEXT, description="Longest prompt, negative prompt or style")
    min_steps: int = Field(1, ge=1, description="Fewest denoising steps")
    max_steps: int = Field(150, ge=1, le=CEILING_STEPS, description="Most denoising steps")
    min_side: int = Field(64, ge=8, description="Smallest width or height in pixels")
    max_side: int = Field(2048, ge=8, le=CEILING_SIDE, description="Largest width or height in pixels")
    min_guidance: float = Field(0.0, ge=0.0, description="Lowest guidance scale")
    max_guidance: float = Field(30.0, ge=0.0, le=100.0, description="Highest guidance scale")
    max_job_bytes: int = Field(1_000_000, ge=1, description="Largest job file in bytes")
    max_source_bytes: int = Field(10_000_000, ge=1, description="Largest img2img source in bytes")
    max_source_side: int = Field(4096, ge=1, description="Largest img2img source side in pixels")
    tiny_vae: bool = Field(True, description="Whether jobs may ask for `speedups.tiny_vae` (a tiny VAE is configured)")

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """The limits the app runs with: the `IMAGEGEN_MAX_*` settings over the defaults."""
        values = {
            "max_variants": settings.max_variants, "max_steps": settings.max_steps,
            "max_side": settings.max_side, "max_source_bytes": settings.max_source_bytes,
            "max_source_side": settings.max_source_side,
            # The offline `tiny` model brings its own tiny VAE (imagegen.generation.tiny_model);
            # with a model catalog, each model says at submit (imagegen.generation.model_fit).
            "tiny_vae": bool(settings.tiny_vae) or settings.model == "tiny" or bool(settings.models),
        }
        try:
            return cls(**values)
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]
            field = str(problem["loc"][0])
            bound = problem.get("ctx", {})
            rule = (f"must be at most {bound['le']}" if "le" in bound else
                    f"must be at least {bound['ge']}" if "ge" in bound else problem["msg"].lower())
            raise ValueError(f"setting `IMAGEGEN_{field.upper()}` {rule}, got {str(problem['input'])!r}") from None


DEFAULT_LIMITS = Limits()
CEILING = Limits(
    max_variants=CEILING_VARIANTS, max_prompts=CEILING_VARIANTS, max_styles=CEILING_VARIANTS,
    max_prompt_chars=CEILING_TEXT, max_steps=CEILING_STEPS, max_side=CEILING_SIDE, max_guidance=100.0,
)

# --- each job field checked against the limits in force ----------------------------------

MAX_SEED = 2**32 - 1
INPUTS_CONTAINER = "inputs"  # where a bare image name lives; matches imagegen.core.blob_names.input_ref
SIZE_PATTERN = re.compile(r"([0-9]{1,6})x([0-9]{1,6})")
URL_PATTERN = re.compile(r"^(//|[a-zA-Z][a-zA-Z0-9+.-]*:)")  # http://, s3:, data:, //host


def limits_of(info: ValidationInfo) -> Limits:
    """The limits a validation runs under: parse_job passes them in the context; without
    them (a job that was checked before, read back) only the CEILING applies."""
    return (info.context or {}).get("limits") or CEILING


# --- field checks: each names the field as `{path}`, filled in once the full path is known


def _check_text(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise fail("empty", "`{path}` must not be empty")
    return _check_length(value, info)


def _check_length(value: str, info: ValidationInfo) -> str:
    limit = limits_of(info).max_prompt_chars
    if len(value) > limit:
        raise fail("max_prompt_chars", f"`{{path}}` must be at most {limit:,} characters, got {len(value):,}")
    return value


def _check_image_name(value: str) -> str:
    if URL_PATTERN.match(value):
        raise fail(
            "blob_name",
            f"`{{path}}` must be the name of a blob in the `{INPUTS_CONTAINER}` container "
            f"(e.g. sneaker.png), not a URL, got {show_value(value)}; upload the image first",
        )
    segments = value.split("/")
    if not value or len(value) > 1024 or "\\" in value or any(ord(c) < 32 for c in value):
        raise fail(
            "blob_name",
            f"`{{path}}` must be a blob name of 1 to 1,024 characters without backslashes "
            f"or control characters, got {show_value(value)}",
        )
    if ".." in segments or "." in segments or "" in segments:
        raise fail(
            "blob_name",
            f"`{{path}}` must be a plain blob name inside `{INPUTS_CONTAINER}` "
            f"(no '..', '.' or empty path segments), got {show_value(value)}",
        )
    return value


def _check_strength(value: float) -> float:
    if not 0.0 < value <= 1.0:  # written this way round so NaN fails too
        raise fail("strength_range", f"`{{path}}` must be greater than 0 and at most 1, got {show_value(value)}")
    return value


# Delivery sizes by name: what a channel asks for, usable wherever a `WxH` size is.
SIZE_PRESETS: dict[str, str] = {
    "instagram-square": "1080x1080",
    "instagram-portrait": "1080x1350",
    "story": "1080x1920",
    "link-ad": "1200x628",
    "og-image": "1200x630",
    "youtube-thumbnail": "1280x720",
    "banner": "1456x180",
    "leaderboard": "728x90",
}


def parse_size(size: str) -> tuple[int, int]:
    """'768x512' (or a preset's name) -> (768, 512); the size has already been checked by the model."""
    width, _, height = SIZE_PRESETS.get(size, size).partition("x")
    return int(width), int(height)


def _check_size(value: str, info: ValidationInfo) -> str:
    """A `WxH` size within the limits, any number of pixels per side (the engine delivers it
    exactly: imagegen.generation.delivery), or a preset's name, read as its size."""
    limits = limits_of(info)
    value = SIZE_PRESETS.get(value, value)
    match = SIZE_PATTERN.fullmatch(value)
    if not match:
        raise fail("size_format", f"`{{path}}` must be WIDTHxHEIGHT in pixels, e.g. '768x512', or a preset "
                                  f"({', '.join(SIZE_PRESETS)}), got {show_value(value)}")
    width, height = int(match[1]), int(match[2])
    if not all(limits.min_side <= side <= limits.max_side for side in (width, height)):
        raise fail(
            "size_range",
            f"`{{path}}` must be between {limits.min_side} and {limits.max_side} px per side, got {show_value(value)}",
        )
    return value


def _check_guidance(value: float, info: ValidationInfo) -> float:
    limits = limits_of(info)
    if not limits.min_guidance <= value <= limits.max_guidance:
        raise fail(
            "guidance_range",
            f"`{{path}}` must be between {limits.min_guidance:g} and {limits.max_guidance:g}, got {show_value(value)}",
        )
    return value


def _check_seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise fail("seed_range", f"`{{path}}` must be between 0 and {MAX_SEED:,} (2**32-1), got {show_value(value)}")
    return value


def _check_seed_count(value: int, info: ValidationInfo) -> int:
    limit = limits_of(info).max_variants
    if not 1 <= value <= limit:
        raise fail("seed_count", f"`{{path}}` as a count must be between 1 and {limit}, got {show_value(value)}")
    return value


T = TypeVar("T")


def check_list(values: list[T], most: int, limit_name: str, key: Callable[[T], object] = lambda value: value) -> list[T]:
    if len(values) > most:
        raise fail(limit_name, f"`{{path}}` may have at most {most} entries, got {len(values):,}")
    seen: set[object] = set()
    for value in values:
        if key(value) in seen:  # a repeat would make the same images twice
            raise fail("duplicate", f"`{{path}}` lists {show_value(value)} more than once")
        seen.add(key(value))
    return values


PromptText = Annotated[str, AfterValidator(_check_text)]
ShortText = Annotated[str, AfterValidator(_check_length)]
ImageName = Annotated[str, AfterValidator(_check_image_name)]
Strength = Annotated[float, AfterValidator(_check_strength)]
Size = Annotated[str, AfterValidator(_check_size)]
Guidance = Annotated[float, AfterValidator(_check_guidance)]
Seed = Annotated[int, AfterValidator(_check_seed)]
# `seeds` is a count or a list. The discriminator picks the branch by type so an error is
# reported once, for the branch the user meant, instead of once per union member.
Seeds = Annotated[
    Union[
        Annotated[int, AfterValidator(_check_seed_count), Tag("seeds-count")],
        Annotated[list[Seed], Tag("seeds-list")],
    ],
    Discriminator(lambda value: "seeds-list" if isinstance(value, list) else "seeds-count"),
]
