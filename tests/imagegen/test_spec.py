"""Job specs as a user meets them: files in, variants and batches out, or errors that say what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from imagegen.core.settings import Settings
from imagegen.jobs.spec import JobSpec, Limits, parse_job, render_schema
from imagegen.jobs.variants import batches, expand
from tests.imagegen.conftest import CAMPAIGN_YAML, errors_of, job

ROOT = Path(__file__).resolve().parents[2]


# --- reading JSON and YAML ---------------------------------------------------------------------


def test_yaml_and_json_give_the_same_job():
    from_yaml = parse_job(CAMPAIGN_YAML, filename="campaign.yaml")
    from_json = parse_job(json.dumps(from_yaml.model_dump()).encode(), filename="campaign.json")
    sniffed = parse_job(json.dumps(from_yaml.model_dump()))
    assert from_yaml == from_json == sniffed
    assert from_yaml.prompts[1].image == "sneaker.png"
    assert from_yaml.variants.seeds == 4


def test_yaml_syntax_error_gives_the_line():
    text = "name: a\nprompts:\n  - text: [unclosed\nvariants: {}\n"
    rule, message = errors_of(text, filename="a.yaml")[""]
    assert rule == "syntax"
    assert "YAML" in message and "line 4" in message


def test_json_syntax_error_gives_the_line():
    rule, message = errors_of('{"name": "a",\n "prompts": [}\n', filename="a.json")[""]
    assert rule == "syntax" and "JSON" in message and "line 2" in message


def test_yaml_aliases_are_refused():
    text = "name: a\nx: &a [1, 2]\nprompts: *a\n"
    rule, message = errors_of(text)[""]
    assert rule == "syntax" and "aliases" in message


def test_name_defaults_to_the_file_name_slugified():
    assert parse_job("prompts: [{text: a}]", filename="drops/Spring Sale 2025.yaml").name == "spring-sale-2025"


def test_name_is_required_without_a_file_name():
    assert errors_of({"prompts": [{"text": "a"}]})["name"] == ("required", "`name` is required")


def test_name_must_be_safe_in_blob_paths():
    rule, message = errors_of({"name": "../Spring Sale", "prompts": [{"text": "a"}]})["name"]
    assert rule == "name_format"
    assert "'../Spring Sale'" in message and "try 'spring-sale'" in message


def test_unknown_fields_are_errors_with_a_suggestion():
    errors = errors_of({**job(seed=3), "output": {"fromat": "png"}, "promts": []})
    assert errors["variants.seed"] == ("unknown_field", "`variants.seed` is not a known field; did you mean `seeds`?")
    assert "did you mean `format`?" in errors["output.fromat"][1]
    assert "did you mean `prompts`?" in errors["promts"][1]


def test_every_problem_is_reported_at_once():
    errors = errors_of({
        "name": "t",
        "prompts": [{"text": "ok"}, {"text": "  "}, {"text": "x", "image": "a.png", "strength": 0}],
        "variants": {"steps": 0, "sizes": ["512x512", "500 by 512"], "scheduler": "karras"},
        "output": {"format": "gif"},
    })
    assert set(errors) == {
        "prompts[1].text", "prompts[2].strength", "variants.steps", "variants.sizes[1]",
        "variants.scheduler", "output.format",
    }
    assert errors["variants.scheduler"][1] == (
        "`variants.scheduler` must be one of 'dpmpp', 'euler', 'euler_a', 'ddim' or 'lcm', got 'karras'"
    )
    assert errors["output.format"][0] == "choice"


def test_types_are_not_coerced():
    errors = errors_of(job(steps="25", guidance=[True], seeds=[1.5]))
    assert errors["variants.steps"] == ("type", "`variants.steps` must be a whole number, got '25'")
    assert errors["variants.guidance[0]"][0] == "type"
    assert errors["variants.seeds[0]"][0] == "type"


def test_a_scalar_where_a_list_belongs_says_how_to_write_it():
    rule, message = errors_of(job(sizes="512x512"))["variants.sizes"]
    assert rule == "type" and "list" in message and "'512x512'" in message


# --- limits: each names the field, the rule and the value ----------------------------------------


@pytest.mark.parametrize(
    ("variants", "path", "rule", "words"),
    [
        ({"steps": 151}, "variants.steps", "steps_range", "between 1 and 150, got 151"),
        ({"steps": 0}, "variants.steps", "steps_range", "got 0"),
        ({"sizes": ["square"]}, "variants.sizes[0]", "size_format", "a preset (instagram-square, "),
        ({"sizes": ["512x512", "4096x512"]}, "variants.sizes[1]", "size_range", "between 64 and 2048 px per side, got '4096x512'"),
        ({"sizes": ["32x512"]}, "variants.sizes[0]", "size_range", "got '32x512'"),
        ({"sizes": ["512 by 512"]}, "variants.sizes[0]", "size_format", "WIDTHxHEIGHT"),
        ({"sizes": ["512x512", "0512x512"]}, "variants.sizes", "duplicate", "'0512x512' more than once"),
        ({"styles": ["", "oil", "oil"]}, "variants.styles", "duplicate", "'oil' more than once"),
        ({"guidance": [31]}, "variants.guidance[0]", "guidance_range", "between 0 and 30, got 31"),
        ({"guidance": [float("nan")]}, "variants.guidance[0]", "guidance_range", "got nan"),
        ({"seeds": 0}, "variants.seeds", "seed_count", "between 1 and 64, got 0"),
        ({"seeds": 10**30}, "variants.seeds", "seed_count", f"got {10**30}"),
        ({"seeds": [1, 2**32]}, "variants.seeds[1]", "seed_range", "between 0 and 4,294,967,295 (2**32-1), got 4294967296"),
        ({"seeds": [-1]}, "variants.seeds[0]", "seed_range", "got -1"),
        ({"seeds": []}, "variants.seeds", "empty", "at least one seed"),
        ({"styles": [f"s{i}" for i in range(17)]}, "variants.styles", "max_styles", "at most 16 entries, got 17"),
        ({"styles": ["x" * 2001]}, "variants.styles[0]", "max_prompt_chars", "at most 2,000 characters, got 2,001"),
    ],
)
def test_limits_on_variants(variants, path, rule, words):
    got_rule, message = errors_of(job(**variants))[path]
    assert got_rule == rule
    assert f"`{path}`" in message and words in message


def test_variant_count_limit_says_how_many_and_the_limit():
    data = {"name": "t", "prompts": [{"text": "a"}, {"text": "b"}], "variants": {"seeds": 40, "sizes": ["512x512", "768x512"]}}
    rule, message = errors_of(data)["variants"]
    assert rule == "max_variants"
    assert "expands to 160 variants" in message and "the limit is 64" in message


def test_prompt_limits():
    errors = errors_of({"name": "t", "prompts": [{"text": ""}, {"text": "x" * 2001, "negative": "n" * 2001}]})
    assert errors["prompts[0].text"] == ("empty", "`prompts[0].text` must not be empty")
    assert errors["prompts[1].text"][0] == "max_prompt_chars" and "got 2,001" in errors["prompts[1].text"][1]
    assert "`prompts[1].negative`" in errors["prompts[1].negative"][1]
    assert errors_of({"name": "t", "prompts": []})["prompts"][0] == "empty"
    many = errors_of({"name": "t", "prompts": [{"text": str(i)} for i in range(33)]})["prompts"]
    assert many == ("max_prompts", "`prompts` may have at most 32 entries, got 33")


def test_limits_come_from_settings():
    limits = Limits.from_settings(Settings(max_variants=8, max_steps=10, max_side=512))
    assert "the limit is 8" in errors_of(job(seeds=[1, 2, 3], sizes=["512x512", "256x256", "128x128"]), limits=limits)["variants"][1]
    assert "between 1 and 10, got 11" in errors_of(job(steps=11), limits=limits)["variants.steps"][1]
    assert "between 64 and 512" in errors_of(job(sizes=["768x512"]), limits=limits)["variants.sizes[0]"][1]
    assert parse_job(job(seeds=8), limits=limits).variants.seeds == 8


def test_a_limit_setting_past_the_ceiling_names_the_setting():
    with pytest.raises(ValueError, match=r"setting `IMAGEGEN_MAX_VARIANTS` must be at most 10000, got .20000."):
        Limits.from_settings(Settings(max_variants=20_000))


def test_a_job_checked_under_raised_limits_reads_back_without_them():
    # The orchestrator re-reads the job it was given with JobSpec.model_validate, not
    # knowing the deployment's limits: a job that passed must not fail there.
    raised = Limits(max_variants=500, max_steps=400)
    checked = parse_job(job(seeds=300, steps=400), limits=raised)
    again = JobSpec.model_validate(checked.model_dump(mode="json"))
    assert len(expand(again)) == 300
    # Rules that are not settings still hold, and so does the ceiling.
    with pytest.raises(ValidationError):
        JobSpec.model_validate(job(seeds=10**9))
    with pytest.raises(ValidationError):
        JobSpec.model_validate({"name": "t", "prompts": [{"text": "a", "image": "https://x/a.png"}]})


def test_oversized_job_file_is_refused_before_parsing():
    rule, message = errors_of(b"x" * 2000, limits=Limits(max_job_bytes=1000))[""]
    assert rule == "max_job_bytes" and "2,000 bytes" in message


# --- img2img sources named in the job ----------------------------------------------------------------


@pytest.mark.parametrize("image", ["https://example.com/a.png", "http://x/a.png", "//cdn/a.png", "data:image/png;base64,AAAA"])
def test_a_url_as_image_is_refused(image):
    data = {"name": "t", "prompts": [{"text": "a"}, {"text": "b", "image": image}]}
    rule, message = errors_of(data)["prompts[1].image"]
    assert rule == "blob_name"
    assert "not a URL" in message and repr(image) in message


@pytest.mark.parametrize("image", ["../secrets.png", "a/../../b.png", "/abs.png", "a\\b.png"])
def test_a_path_escaping_the_inputs_container_is_refused(image):
    rule, message = errors_of({"name": "t", "prompts": [{"text": "b", "image": image}]})["prompts[0].image"]
    assert rule == "blob_name" and "`prompts[0].image`" in message


def test_strength_without_image_is_refused():
    rule, message = errors_of({"name": "t", "prompts": [{"text": "b", "strength": 0.5}]})["prompts[0].strength"]
    assert rule == "strength_without_image" and "got 0.5" in message


def test_mask_without_image_is_refused():
    rule, message = errors_of({"name": "t", "prompts": [{"text": "b", "mask": "m.png"}]})["prompts[0].mask"]
    assert rule == "mask_without_image" and "'m.png'" in message


def test_a_masked_prompt_inpaints_at_full_strength_in_its_own_batch_and_keeps_other_seeds():
    plain = {"name": "t", "prompts": [{"text": "a", "image": "s.png"}], "variants": {"seeds": 2}}
    masked = {"name": "t", "prompts": [{"text": "a", "image": "s.png", "mask": "m.png"},
                                        {"text": "a", "image": "s.png"}], "variants": {"seeds": [1]}}
    variants = expand(parse_job(masked))
    assert [(v.image, v.mask, v.strength) for v in variants] == [
        ("inputs/s.png", "inputs/m.png", 1.0), ("inputs/s.png", None, 0.8)]
    assert len(batches(variants, 8)) == 2  # one source AND one mask per batch
    # A job without a mask derives the seeds it did before masks existed.
    assert [v.seed for v in expand(parse_job(plain))] == [2376150257, 2068402055]


# --- speed-ups: off unless asked, recorded on every variant, seeds unchanged -------------------


def test_speedups_are_off_by_default_and_reach_every_variant_when_asked():
    plain = expand(parse_job(job(seeds=2)))
    assert {(v.deepcache, v.tiny_vae) for v in plain} == {(1, False)}
    fast = expand(parse_job({**job(seeds=2), "speedups": {"deepcache": 3, "tiny_vae": True}}))
    assert {(v.deepcache, v.tiny_vae) for v in fast} == {(3, True)}
    # Same seeds and ids, so a sped-up image can be put next to the full one.
    assert [(v.id, v.seed) for v in fast] == [(v.id, v.seed) for v in plain]
    assert parse_job(job(seeds=2)) != parse_job({**job(seeds=2), "speedups": {"deepcache": 3}})


def test_speedup_errors_name_the_field_and_the_rule():
    found = errors_of({**job(), "speedups": {"deepcache": 0, "tiny_vae": "yes", "deep_cache": 2}})
    assert found["speedups.deepcache"] == ("deepcache_range", "`speedups.deepcache` must be between 1 (off) and 10, got 0")
    assert found["speedups.tiny_vae"][0] == "type"
    assert found["speedups.deep_cache"] == ("unknown_field", "`speedups.deep_cache` is not a known field; did you mean `deepcache`?")


def test_tiny_vae_is_refused_where_the_deployment_has_none():
    real_model = Limits.from_settings(Settings(model="stabilityai/sd-turbo"))
    found = errors_of({**job(), "speedups": {"tiny_vae": True}}, limits=real_model)
    assert found["speedups.tiny_vae"][0] == "tiny_vae_unavailable"
    assert "setting `IMAGEGEN_TINY_VAE`" in found["speedups.tiny_vae"][1]
    with_one = Limits.from_settings(Settings(model="stabilityai/sd-turbo", tiny_vae="madebyollin/taesd"))
    assert parse_job({**job(), "speedups": {"tiny_vae": True}}, limits=with_one).speedups.tiny_vae
    assert Limits.from_settings(Settings(model="tiny")).tiny_vae  # the offline model brings its own


def test_batches_keep_different_speedups_apart():
    variants = expand(parse_job(job(seeds=4)))
    mixed = [v.model_copy(update={"deepcache": 2}) if v.index % 2 else v for v in variants]
    assert [[v.index for v in b.variants] for b in batches(mixed, 16)] == [[0, 2], [1, 3]]


# --- the schema -------------------------------------------------------------------------------------------


def test_command_line_checks_a_job_file(tmp_path, capsys):
    from imagegen.jobs.check_job import main

    good, bad = tmp_path / "Good Job.yaml", tmp_path / "bad.json"
    good.write_text("prompts: [{text: a cat}]\nvariants: {seeds: [5, 6]}\n")
    bad.write_text('{"name": "b", "prompts": [{"text": "a", "image": "http://x/y.png"}]}')
    assert main([str(good)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["v000-p0-s0-512x512-g7.5-seed5", "v001-p0-s0-512x512-g7.5-seed6"]
    assert main([str(bad)]) == 1
    assert "prompts[0].image: `prompts[0].image` must be the name of a blob" in capsys.readouterr().err


def test_committed_schema_is_up_to_date():
    committed = (ROOT / "docs" / "job.schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), "regenerate: python -m imagegen.jobs.check_job --schema > docs/job.schema.json"


def test_schema_describes_the_job():
    schema = json.loads(render_schema())
    assert schema["required"] == ["name", "prompts"]
    assert schema["additionalProperties"] is False
    assert set(schema["$defs"]["VariantAxes"]["properties"]) == {"seeds", "styles", "sizes", "guidance", "steps", "scheduler"}


# --- review and notify ------------------------------------------------------------------------


@pytest.mark.parametrize(("review", "path", "rule", "words"), [
    ({"timeout": "3 days"}, "review.timeout", "duration_format", "like '72h' or '30m', got '3 days'"),
    ({"timeout": "0s"}, "review.timeout", "timeout_range", "from 1s to 30d, got '0s'"),
    ({"timeout": "31d"}, "review.timeout", "timeout_range", "got '31d'"),
    ({"on_timeout": "publish"}, "review.on_timeout", "choice", "got 'publish'"),
    ({"required": "yes"}, "review.required", "type", "true or false, got 'yes'"),
    ({"timout": "1h"}, "review.timout", "unknown_field", "did you mean `timeout`?"),
])
def test_review_settings_are_checked_with_field_rule_and_value(review, path, rule, words):
    got_rule, message = errors_of({**job(), "review": review})[path]
    assert got_rule == rule and words in message


def test_review_and_notify_change_no_seed():
    plain = parse_job(job(seeds=3))
    reviewed = parse_job({**job(seeds=3), "review": {"timeout": "2h", "on_timeout": "approve"},
                          "notify": {"url": "https://hooks.example.com/x"}})
    assert [v.seed for v in expand(plain)] == [v.seed for v in expand(reviewed)]
    assert reviewed.review.timeout_seconds() == 7200


@pytest.mark.parametrize(("size", "as_read"), [
    ("1080x1080", "1080x1080"), ("1200x628", "1200x628"), ("500x512", "500x512"),
    ("instagram-square", "1080x1080"), ("story", "1080x1920"), ("link-ad", "1200x628"), ("banner", "1456x180"),
])
def test_any_size_within_the_limits_or_a_preset_is_a_delivery_size(size, as_read):
    job = parse_job({"name": "t", "prompts": [{"text": "a shoe"}], "variants": {"sizes": [size]},
                     "output": {"fit": "contain", "pad_color": "#112233"}})
    [variant] = expand(job)
    assert f"{variant.width}x{variant.height}" == as_read
    assert (variant.fit, variant.pad_color) == ("contain", "#112233")


def test_the_fit_does_not_change_the_seeds():
    job = {"name": "t", "prompts": [{"text": "a shoe"}], "variants": {"seeds": 3, "sizes": ["1080x1080"]}}
    cover = expand(parse_job(job))
    contain = expand(parse_job({**job, "output": {"fit": "contain"}}))
    assert [v.seed for v in cover] == [v.seed for v in contain]


def test_a_bad_fit_or_pad_color_names_the_field():
    errors = errors_of({"name": "t", "prompts": [{"text": "a"}], "output": {"fit": "crop", "pad_color": "white"}})
    assert set(errors) == {"output.fit", "output.pad_color"}
