"""The Azure AI Foundry `images/generations` request body, as one of our jobs.

    {"prompt": "...", "negative_prompt": "...", "size": "1024x1024", "output_format": "png",
     "seed": 42, "n": 4, "steps": 30, "image_prompt": {"image": "<base64>", "strength": 0.6},
     "model": "sdxl"}

`model` picks a model of the deployment's catalog by name; a `model` that names none (a
client written for another service sends its own, `dall-e-3`, `sd3.5-large`) gets the
default model, as it always did. Errors name the body's own fields (`size`,
`image_prompt.strength`), not the job's. OpenAI's own fields (`quality`, `style`, `user`,
...) change nothing, but are checked against OpenAI's documented values all the same;
`null` is the default for any field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagegen.core.field_errors import did_you_mean, field_errors, show_value
from imagegen.core.limits import DEFAULT_LIMITS, MAX_SEED, Limits
from imagegen.core.storable_text import storable_document
from imagegen.core.types import FieldError, JobValidationError
from imagegen.jobs.source_image_checks import decode_image
from imagegen.jobs.spec import JobSpec

BODY_FIELDS = (
    "prompt", "negative_prompt", "image_prompt", "size", "output_format", "seed", "n",
    "steps", "num_inference_steps", "model",
)
# Fields OpenAI's images API takes that change nothing here (`response_format` only adds
# URLs to the answer): accepted, so that a client written for OpenAI works unchanged, and
# checked against the values OpenAI documents for them (openai-python's
# `ImageGenerateParams`), so that what OpenAI answers with a 400 is a 400 here too. A
# field sent as `null` is the default, as everywhere in the body.
OPENAI_CHOICES: dict[str, tuple[str, ...]] = {
    "response_format": ("b64_json", "url"),
    "quality": ("auto", "low", "medium", "high", "xhigh", "max", "standard", "hd"),
    "style": ("vivid", "natural"),
    "background": ("transparent", "opaque", "auto"),
    "moderation": ("low", "auto"),
}
OPENAI_TEXT = ("user", "safety_identifier")
OPENAI_WHOLE_NUMBERS: dict[str, tuple[int, int]] = {"output_compression": (0, 100), "partial_images": (0, 3)}
IGNORED_FIELDS = (*OPENAI_CHOICES, *OPENAI_TEXT, *OPENAI_WHOLE_NUMBERS, "stream")
RESPONSE_FORMATS = OPENAI_CHOICES["response_format"]
IMAGE_PROMPT_FIELDS = ("image", "strength")
# The job is checked with a stand-in source name, which is then removed: the caller
# stores the decoded bytes under `inputs/` and sets the real name (spec.with_source_image).
_STAND_IN_IMAGE = "foundry-source.png"


class FoundryImagePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="The source image, base64 (a `data:` URL prefix and line breaks are accepted)")
    strength: float | None = Field(None, gt=0, le=1, description="How far to move from the source; default 0.8")


class FoundryRequest(BaseModel):
    """The `POST /api/images/generations` body, for the API document. The route reads it
    with `job_from_foundry` (errors name these fields); a test keeps the two in step."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="The prompt")
    negative_prompt: str | None = Field(None, description="What the image should not show")
    image_prompt: FoundryImagePrompt | None = Field(None, description="img2img: a source image and strength")
    size: str | None = Field(None, description="WIDTHxHEIGHT in pixels (delivered exactly), or OpenAI's `auto`; default 512x512")
    output_format: Literal["png", "jpeg", "webp"] | None = None
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="The first image's seed; the next get seed+1, ...")
    n: int | None = Field(None, ge=1, description="How many images; default 1")
    steps: int | None = Field(None, ge=1, description="Denoising steps")
    num_inference_steps: int | None = Field(None, ge=1, description="Another name for `steps`")
    model: str | None = Field(None, description="A model of the deployment's catalog by name (GET /api/models); "
                              "any other value, or none, gets the default model")
    response_format: Literal["b64_json", "url"] | None = Field(None, description="OpenAI's; `url` adds each image's URL")
    quality: Literal["auto", "low", "medium", "high", "xhigh", "max", "standard", "hd"] | None = Field(
        None, description="OpenAI's: checked, and ignored")
    style: Literal["vivid", "natural"] | None = Field(None, description="OpenAI's: checked, and ignored")
    background: Literal["transparent", "opaque", "auto"] | None = Field(None, description="OpenAI's: checked, and ignored")
    moderation: Literal["low", "auto"] | None = Field(None, description="OpenAI's: checked, and ignored")
    user: str | None = Field(None, description="OpenAI's (an end user's id): checked, and ignored")
    safety_identifier: str | None = Field(None, description="OpenAI's (an end user's id): checked, and ignored")
    output_compression: int | None = Field(None, ge=0, le=100, description="OpenAI's: checked, and ignored")
    partial_images: int | None = Field(None, ge=0, le=3, description="OpenAI's: checked, and ignored")
    stream: Literal[False] | None = Field(None, description="OpenAI's: must be false")


def _error(path: str, rule: str, message: str) -> FieldError:
    return FieldError(path=path, rule=rule, message=message)


def _unknown(path: str, key: Any, known: tuple[str, ...]) -> FieldError:
    return _error(path, "unknown_field", did_you_mean(path, key, known))


def _whole_number(body: dict, key: str, low: int, high: int) -> tuple[int | None, FieldError | None]:
    value = body[key]
    if not isinstance(value, int) or isinstance(value, bool):
        return None, _error(key, "type", f"`{key}` must be a whole number, got {show_value(value)}")
    if not low <= value <= high:
        return None, _error(key, f"{key}_range", f"`{key}` must be between {low} and {high:,}, got {show_value(value)}")
    return value, None


def _openai_field_errors(body: dict) -> list[FieldError]:
    """OpenAI's own fields checked against the values OpenAI documents (see OPENAI_CHOICES)."""
    errors = []
    for key, choices in OPENAI_CHOICES.items():
        if key in body and (not isinstance(body[key], str) or body[key] not in choices):
            errors.append(_error(key, "one_of", f"`{key}` must be one of {', '.join(f'`{c}`' for c in choices)} "
                                 f"(OpenAI's values), got {show_value(body[key])}"))
    for key in OPENAI_TEXT:
        if key in body and not isinstance(body[key], str):
            errors.append(_error(key, "type", f"`{key}` must be text (an id for the end user), got {show_value(body[key])}"))
    for key, (low, high) in OPENAI_WHOLE_NUMBERS.items():
        if key in body:
            errors += [problem for problem in [_whole_number(body, key, low, high)[1]] if problem]
    if "stream" in body and body["stream"] is not False:
        errors.append(_error("stream", "stream", f"`stream` must be false: images come back whole, got {show_value(body['stream'])}"))
    return errors


def _rename(error: FieldError, names: dict[str, str]) -> FieldError:
    """A job-path error re-worded with the body's field name."""
    path = error.path
    for prefix, body_name in names.items():
        if path == prefix or path.startswith(prefix + "[") or path.startswith(prefix + "."):
            return FieldError(
                path=body_name, rule=error.rule,
                message=error.message.replace(f"`{path}`", f"`{body_name}`"),
            )
    return error


# Job fields by the body's names, for errors found after the job is made (its model's refusals).
BODY_NAMES = {"prompts[0].text": "prompt", "prompts[0].negative": "negative_prompt",
              "prompts[0].strength": "image_prompt.strength", "prompts[0].image": "image_prompt.image",
              "prompts": "prompt", "variants.sizes": "size", "variants.steps": "steps", "variants": "n",
              "output.format": "output_format"}


def body_errors(errors: list[FieldError]) -> list[FieldError]:
    """Errors about a Foundry body's job, worded with the body's field names."""
    return [_rename(error, BODY_NAMES) for error in errors]


def job_from_foundry(body: dict, limits: Limits | None = None,
                     model_names: Collection[str] = ()) -> tuple[JobSpec, bytes | None]:
    """A checked job and the decoded source image (None for text-to-image). `model_names`:
    the deployment's catalog; a `model` among them is the job's model.

    `n` images with a `seed` get seeds seed, seed+1, ... (wrapping at 2**32); without a
    seed they are derived from the request like any job's. The job's name is `foundry-`
    and 12 hex digits of the body's sha256, so a retried request gets the same name.
    """
    limits = limits or DEFAULT_LIMITS
    if not isinstance(body, dict):
        raise JobValidationError([_error("", "type", f"the request body must be a JSON object with `prompt`, got {show_value(body)}")])
    body = storable_document(body)
    # A field sent as null is a field not sent (clients built on OpenAI's types send them).
    body = {key: value for key, value in body.items() if value is not None}
    known = BODY_FIELDS + IGNORED_FIELDS
    errors = [_unknown(str(key), key, known) for key in body if key not in known]
    errors += _openai_field_errors(body)
    body = {key: value for key, value in body.items() if key not in IGNORED_FIELDS}
    if body.get("size") == "auto":  # OpenAI's "let the model choose": the deployment's default
        body = {key: value for key, value in body.items() if key != "size"}

    count = seed = None
    if "n" in body:
        count, problem = _whole_number(body, "n", 1, limits.max_variants)
        errors += [problem] if problem else []
    if "seed" in body:
        seed, problem = _whole_number(body, "seed", 0, MAX_SEED)
        errors += [problem] if problem else []
    steps_key = "num_inference_steps" if "num_inference_steps" in body else "steps"
    if "steps" in body and "num_inference_steps" in body and body["steps"] != body["num_inference_steps"]:
        errors.append(_error(
            "steps", "conflict",
            f"`steps` ({show_value(body['steps'])}) and `num_inference_steps` "
            f"({show_value(body['num_inference_steps'])}) disagree; send one of them",
        ))

    prompt: dict[str, Any] = {"text": body["prompt"]} if "prompt" in body else {}
    if "negative_prompt" in body:
        prompt["negative"] = body["negative_prompt"]
    source = None
    if "image_prompt" in body:
        image_prompt = body["image_prompt"]
        if not isinstance(image_prompt, dict):
            errors.append(_error("image_prompt", "type", f"`image_prompt` must be an object with `image` and `strength`, got {show_value(image_prompt)}"))
        else:
            image_prompt = {key: value for key, value in image_prompt.items() if value is not None}  # null: not sent
            errors += [_unknown(f"image_prompt.{key}", key, IMAGE_PROMPT_FIELDS) for key in image_prompt if key not in IMAGE_PROMPT_FIELDS]
            prompt["image"] = _STAND_IN_IMAGE
            if "strength" in image_prompt:
                prompt["strength"] = image_prompt["strength"]
            if "image" not in image_prompt:
                errors.append(_error("image_prompt.image", "required", "`image_prompt.image` is required: the source image in base64"))
            else:
                try:
                    source = decode_image(image_prompt["image"], limits)
                except JobValidationError as error:
                    errors += error.errors

    variants: dict[str, Any] = {}
    if "size" in body:
        variants["sizes"] = [body["size"]]
    if steps_key in body:
        variants["steps"] = body[steps_key]
    if seed is not None:
        variants["seeds"] = [(seed + offset) % (MAX_SEED + 1) for offset in range(count or 1)]
    elif count is not None:
        variants["seeds"] = count
    job_data: dict[str, Any] = {"name": "foundry-" + _body_digest(body)[:12], "prompts": [prompt], "variants": variants}
    if body.get("model") in model_names:
        job_data["model"] = body["model"]
    if "output_format" in body:
        job_data["output"] = {"format": body["output_format"]}

    names = {
        "prompts[0].text": "prompt", "prompts[0].negative": "negative_prompt",
        "prompts[0].strength": "image_prompt.strength", "prompts[0].image": "image_prompt.image",
        "prompts": "prompt", "variants.sizes": "size", "variants.steps": steps_key,
        "variants.seeds": "seed" if seed is not None else "n", "variants": "n", "output.format": "output_format",
    }
    job = None
    try:
        job = JobSpec.model_validate(job_data, context={"limits": limits})
    except ValidationError as error:
        errors += [_rename(item, names) for item in field_errors(error, JobSpec)]
    if errors or job is None:
        raise JobValidationError(errors)
    if source is not None:
        first = job.prompts[0].model_copy(update={"image": None})
        job = job.model_copy(update={"prompts": [first]})
    return job, source


def _body_digest(body: dict) -> str:
    canonical = json.dumps({str(key): value for key, value in body.items()}, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
