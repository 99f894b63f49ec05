"""The Azure AI Foundry images body as a job: errors use the body's own field names."""

from __future__ import annotations

import base64
import typing

import pytest

from imagegen.core.types import JobValidationError
from imagegen.jobs.foundry_body import BODY_FIELDS, IGNORED_FIELDS, OPENAI_CHOICES, FoundryRequest, job_from_foundry
from imagegen.jobs.spec import with_source_image
from imagegen.jobs.variants import expand
from tests.imagegen.conftest import png

# --- the Foundry body -----------------------------------------------------------------------------------


def test_foundry_text_to_image():
    job_, source = job_from_foundry({
        "prompt": "a lighthouse", "negative_prompt": "fog", "size": "768x512", "output_format": "webp",
        "n": 3, "num_inference_steps": 30, "model": "whatever",
    })
    assert source is None
    variants = expand(job_)
    assert [(v.prompt, v.negative, v.width, v.height, v.steps, v.format) for v in variants] == [
        ("a lighthouse", "fog", 768, 512, 30, "webp")
    ] * 3
    assert job_.name.startswith("foundry-") and job_.model is None  # "whatever" names no model of the catalog
    # No size: the model's own (its native square), filled in at submit; 512x512 for SD 1.x.
    assert job_from_foundry({"prompt": "a lighthouse"})[0].variants.sizes is None
    assert [(v.width, v.height) for v in expand(job_from_foundry({"prompt": "a lighthouse"})[0])] == [(512, 512)]


def test_foundry_model_picks_a_catalog_model_and_any_other_value_the_default():
    catalog = ("default", "sdxl", "flux-schnell")
    assert job_from_foundry({"prompt": "a", "model": "flux-schnell"}, model_names=catalog)[0].model == "flux-schnell"
    assert job_from_foundry({"prompt": "a", "model": "dall-e-3"}, model_names=catalog)[0].model is None
    assert job_from_foundry({"prompt": "a", "model": "sdxl"})[0].model is None  # no catalog: the default


def test_foundry_errors_found_after_the_job_is_made_name_the_bodys_fields():
    from imagegen.core.types import FieldError
    from imagegen.jobs.foundry_body import body_errors

    renamed = body_errors([
        FieldError(path="prompts[0].negative", rule="negative_unsupported",
                   message="`prompts[0].negative` is not used by FLUX.1 models (model `flux`): ..., got 'fog'"),
        FieldError(path="variants.sizes[0]", rule="size_range", message="`variants.sizes[0]` must be ..."),
    ])
    assert [(e.path, e.message.split(" ")[0]) for e in renamed] == [
        ("negative_prompt", "`negative_prompt`"), ("size", "`size`")]


def test_foundry_seed_with_n_counts_up():
    job_, _ = job_from_foundry({"prompt": "a", "seed": 2**32 - 2, "n": 3})
    assert [v.seed for v in expand(job_)] == [2**32 - 2, 2**32 - 1, 0]


def test_foundry_image_to_image_with_base64():
    data = png(64, 64)
    job_, source = job_from_foundry({
        "prompt": "a lighthouse", "image_prompt": {"image": base64.b64encode(data).decode(), "strength": 0.4},
    })
    assert source == data
    assert job_.prompts[0].image is None and job_.prompts[0].strength == 0.4
    variant = expand(with_source_image(job_, "inputs/foundry-abc.png"))[0]
    assert (variant.image, variant.strength) == ("inputs/foundry-abc.png", 0.4)


def test_foundry_bad_base64_names_the_field():
    with pytest.raises(JobValidationError) as caught:
        job_from_foundry({"prompt": "a", "image_prompt": {"image": "not base64!", "strength": 0.5}})
    (error,) = caught.value.errors
    assert (error.path, error.rule) == ("image_prompt.image", "base64")
    assert error.message.startswith("`image_prompt.image` is not valid base64")


def test_foundry_undecodable_image_names_the_field():
    with pytest.raises(JobValidationError) as caught:
        job_from_foundry({"prompt": "a", "image_prompt": {"image": base64.b64encode(b"hello").decode()}})
    assert caught.value.errors[0].path == "image_prompt.image"


def test_foundry_errors_use_the_body_field_names():
    with pytest.raises(JobValidationError) as caught:
        job_from_foundry({
            "prompt": "", "size": "1000x9999", "n": 65, "steps": 500, "output_format": "gif",
            "image_prompt": {"image": base64.b64encode(png(8, 8)).decode(), "strength": 1.5}, "qualty": "hd",
        })
    errors = {error.path: error for error in caught.value.errors}
    assert set(errors) == {"prompt", "size", "n", "steps", "output_format", "image_prompt.strength", "qualty"}
    assert errors["size"].message == "`size` must be between 64 and 2048 px per side, got '1000x9999'"
    assert errors["n"].message == "`n` must be between 1 and 64, got 65"
    assert errors["steps"].message == "`steps` must be between 1 and 150, got 500"
    assert "`image_prompt.strength`" in errors["image_prompt.strength"].message


def test_foundry_prompt_is_required_and_body_must_be_an_object():
    with pytest.raises(JobValidationError, match="`prompt` is required"):
        job_from_foundry({"size": "512x512"})
    with pytest.raises(JobValidationError, match="JSON object"):
        job_from_foundry(["a"])


# --- OpenAI's own fields: ignored, but checked as OpenAI checks them -----------------------------------


@pytest.mark.parametrize("field, value, rule, words", [
    ("quality", "ultra", "one_of", "`quality` must be one of `auto`, `low`, `medium`, `high`, `xhigh`, `max`, "
                                   "`standard`, `hd` (OpenAI's values), got 'ultra'"),
    ("quality", 3, "one_of", "got 3"),
    ("style", "bogus", "one_of", "`style` must be one of `vivid`, `natural` (OpenAI's values), got 'bogus'"),
    ("response_format", "png", "one_of", "`response_format` must be one of `b64_json`, `url`"),
    ("background", "clear", "one_of", "`background` must be one of `transparent`, `opaque`, `auto`"),
    ("moderation", "none", "one_of", "`moderation` must be one of `low`, `auto`"),
    ("user", {"id": 1}, "type", "`user` must be text"),
    ("safety_identifier", 7, "type", "`safety_identifier` must be text"),
    ("output_compression", 101, "output_compression_range", "`output_compression` must be between 0 and 100, got 101"),
    ("partial_images", True, "type", "`partial_images` must be a whole number, got True"),
    ("stream", True, "stream", "`stream` must be false"),
    ("stream", 0, "stream", "`stream` must be false"),
    ("n", 0, "n_range", "`n` must be between 1 and 64, got 0"),
    ("n", "2", "type", "`n` must be a whole number, got '2'"),
    ("size", 1024, "type", "`size`"),
])
def test_openai_fields_take_only_openai_values(field, value, rule, words):
    with pytest.raises(JobValidationError) as caught:
        job_from_foundry({"prompt": "a lighthouse", field: value})
    (error,) = caught.value.errors
    assert (error.path, error.rule) == (field, rule)
    assert words in error.message


def test_openai_fields_with_their_values_change_nothing():
    plain, _ = job_from_foundry({"prompt": "a lighthouse"})
    dressed, _ = job_from_foundry({
        "prompt": "a lighthouse", "quality": "hd", "style": "natural", "user": "u-1", "safety_identifier": "h-1",
        "background": "opaque", "moderation": "low", "output_compression": 0, "partial_images": 3, "stream": False,
        "response_format": "url",
    })
    assert dressed == plain


def test_null_is_the_default_for_every_field():
    nulls = {field: None for field in FoundryRequest.model_fields if field != "prompt"}
    job_, source = job_from_foundry({"prompt": "a lighthouse", **nulls})
    assert job_ == job_from_foundry({"prompt": "a lighthouse"})[0] and source is None
    data = base64.b64encode(png(64, 64)).decode()
    job_, _ = job_from_foundry({"prompt": "a lighthouse", "image_prompt": {"image": data, "strength": None}})
    assert job_.prompts[0].strength is None  # the job's default strength applies
    with pytest.raises(JobValidationError, match="`image_prompt.image` is required"):
        job_from_foundry({"prompt": "a lighthouse", "image_prompt": {"image": None}})


def test_the_api_document_model_takes_what_the_route_takes():
    """FoundryRequest (the OpenAPI document) and job_from_foundry agree on fields and values."""
    assert set(FoundryRequest.model_fields) == set(BODY_FIELDS) | set(IGNORED_FIELDS)
    for field, choices in OPENAI_CHOICES.items():
        annotation = FoundryRequest.model_fields[field].annotation
        literal = next(arg for arg in typing.get_args(annotation) if typing.get_origin(arg) is typing.Literal)
        assert typing.get_args(literal) == choices, field


def test_a_foundry_body_nested_too_deeply_is_refused_naming_the_field():
    deep: object = "x"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(JobValidationError) as caught:
        job_from_foundry({"prompt": "a lighthouse", "user": deep})
    (error,) = caught.value.errors
    assert (error.path, error.rule) == ("user" + "[0]" * 31, "max_depth")
