"""Job specs as a user meets them: files in, variants and batches out, or errors that say what to fix."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from imagegen.settings import Settings
from imagegen.spec import (
    JobSpec,
    Limits,
    batches,
    check_source_image,
    expand,
    job_digest,
    job_from_foundry,
    parse_job,
    render_schema,
    with_source_image,
)
from imagegen.types import JobValidationError

ROOT = Path(__file__).resolve().parents[2]

CAMPAIGN_YAML = """\
name: spring-campaign
prompts:
  - text: "a running shoe on wet sand at sunset, product photo"
    negative: "blurry, text, watermark"
  - text: "the same shoe, studio lighting"
    image: sneaker.png        # img2img source: a blob name, never a URL
    strength: 0.6
variants:
  seeds: 4
  styles: ["", "watercolor illustration"]
  sizes: ["512x512", "768x512"]
  guidance: [7.0]
  steps: 25
  scheduler: dpmpp
output: {format: png}
"""


def job(**variants) -> dict:
    return {"name": "t", "prompts": [{"text": "a cat"}], "variants": variants}


def errors_of(data, **kwargs) -> dict[str, tuple[str, str]]:
    """path -> (rule, message) for every error parse_job reports."""
    with pytest.raises(JobValidationError) as caught:
        parse_job(data, **kwargs)
    return {error.path: (error.rule, error.message) for error in caught.value.errors}


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


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
        "variants": {"steps": 0, "sizes": ["512x512", "500x512"], "scheduler": "karras"},
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
        ({"sizes": ["500x512"]}, "variants.sizes[0]", "multiple_of_8", "multiple of 8 per side, got '500x512'"),
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
    with pytest.raises(ValueError, match=r"setting `IMAGEGEN_MAX_VARIANTS` input should be less than or equal to 10000, got 20000"):
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


# --- expansion ----------------------------------------------------------------------------------------


def test_expansion_order_styles_and_img2img():
    variants = expand(parse_job(CAMPAIGN_YAML))
    assert len(variants) == 2 * 2 * 2 * 1 * 4
    assert [v.index for v in variants] == list(range(32))
    # prompt -> style -> size -> guidance -> seed: the seed changes fastest.
    first_four = variants[:4]
    assert {(v.prompt_index, v.style, v.width) for v in first_four} == {(0, "", 512)}
    assert len({v.seed for v in first_four}) == 4
    assert (variants[4].width, variants[4].height) == (768, 512)
    assert variants[8].prompt == "a running shoe on wet sand at sunset, product photo, watercolor illustration"
    assert variants[8].base_prompt == "a running shoe on wet sand at sunset, product photo"
    assert variants[0].negative == "blurry, text, watermark"
    img2img = variants[16]
    assert (img2img.prompt_index, img2img.image, img2img.strength) == (1, "inputs/sneaker.png", 0.6)
    assert variants[0].image is None and variants[0].strength is None
    assert variants[0].id == f"v000-p0-s0-512x512-g7-seed{variants[0].seed}"
    assert len({v.id for v in variants}) == 32
    assert all("/" not in v.id and len(v.id) < 64 for v in variants)


def test_seed_lists_are_used_as_given():
    variants = expand(parse_job(job(seeds=[7, 3, 2**32 - 1])))
    assert [v.seed for v in variants] == [7, 3, 2**32 - 1]


def test_derived_seeds_depend_on_the_job():
    one = [v.seed for v in expand(parse_job(job(seeds=4)))]
    other = [v.seed for v in expand(parse_job({**job(seeds=4), "prompts": [{"text": "a dog"}]}))]
    assert len(set(one)) == 4 and all(0 <= seed < 2**32 for seed in one)
    assert set(one).isdisjoint(other)
    # Asking for more seeds keeps the ones already made, so earlier images stay comparable.
    assert [v.seed for v in expand(parse_job(job(seeds=6)))][:4] == one


def test_image_names_become_blob_names_with_a_default_strength():
    prompts = [{"text": "a", "image": "cat.png"}, {"text": "b", "image": "prompts/campaign/shoe.png", "strength": 0.3}]
    variants = expand(parse_job({"name": "t", "prompts": prompts}))
    # A bare name is in `inputs`; a name with a '/' already says its container.
    assert [(v.image, v.strength) for v in variants] == [("inputs/cat.png", 0.8), ("prompts/campaign/shoe.png", 0.3)]


EXPAND_SCRIPT = """
import json, sys
from imagegen.spec import expand, parse_job, job_digest
job = parse_job(sys.stdin.read())
print(json.dumps({"digest": job_digest(job), "variants": [v.model_dump(mode="json") for v in expand(job)]}))
"""


def test_same_job_same_variants_in_another_process():
    job_ = parse_job(CAMPAIGN_YAML)
    here = json.dumps({"digest": job_digest(job_), "variants": [v.model_dump(mode="json") for v in expand(job_)]})
    there = subprocess.run(
        [sys.executable, "-c", EXPAND_SCRIPT], input=CAMPAIGN_YAML, capture_output=True, text=True,
        check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=ROOT,
    ).stdout.strip()
    assert there == here


def test_digest_ignores_spelling_but_not_content():
    written = parse_job("name: a\nprompts: [{text: x}]\n")
    spelled_out = parse_job({"name": "a", "prompts": [{"text": "x", "negative": ""}], "variants": {"steps": 25}})
    assert job_digest(written) == job_digest(spelled_out)
    assert job_digest(written) != job_digest(parse_job("name: a\nprompts: [{text: y}]\n"))


# --- batching -----------------------------------------------------------------------------------------


def test_batches_group_what_one_gpu_call_can_take():
    variants = expand(parse_job(CAMPAIGN_YAML))
    result = batches(variants, max_batch=3)
    assert [b.id for b in result] == [f"b{i:03d}" for i in range(len(result))]
    assert sorted(v.index for b in result for v in b.variants) == list(range(32))
    for batch in result:
        assert len(batch.variants) <= 3
        shared = {(v.width, v.height, v.steps, v.scheduler, v.guidance, v.image, v.strength) for v in batch.variants}
        assert len(shared) == 1
        assert [v.index for v in batch.variants] == sorted(v.index for v in batch.variants)
    # Styles and negative prompts differ per image, so they share a batch.
    assert len({v.style for v in batches(variants, 64)[0].variants}) == 2
    # 2 prompts (one img2img) x 2 sizes = 4 groups of 8 variants.
    assert [len(b.variants) for b in batches(variants, 64)] == [8, 8, 8, 8]
    assert [b.variants[0].index for b in batches(variants, 64)] == [0, 4, 16, 20]
    assert [len(b.variants) for b in batches(variants, 5)] == [5, 3] * 4


def test_batches_reject_a_bad_max_batch():
    with pytest.raises(ValueError, match="`max_batch` must be a whole number of at least 1, got 0"):
        batches([], 0)
    assert batches([], 4) == []


# --- speed-ups: off unless asked, recorded on every variant, seeds unchanged -------------------


def test_speedups_are_off_by_default_and_reach_every_variant_when_asked():
    plain = expand(parse_job(job(seeds=2)))
    assert {(v.deepcache, v.tiny_vae) for v in plain} == {(1, False)}
    fast = expand(parse_job({**job(seeds=2), "speedups": {"deepcache": 3, "tiny_vae": True}}))
    assert {(v.deepcache, v.tiny_vae) for v in fast} == {(3, True)}
    # Same seeds and ids, so a sped-up image can be put next to the full one.
    assert [(v.id, v.seed) for v in fast] == [(v.id, v.seed) for v in plain]
    assert job_digest(parse_job(job(seeds=2))) != job_digest(parse_job({**job(seeds=2), "speedups": {"deepcache": 3}}))


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


# --- source images ------------------------------------------------------------------------------------


def test_source_image_is_decoded_to_rgb():
    image = check_source_image(png(80, 60, "RGBA"))
    assert (image.mode, image.size) == ("RGB", (80, 60))


def test_corrupt_source_image_is_refused():
    data = png(80, 60)
    with pytest.raises(JobValidationError) as caught:
        check_source_image(data[: len(data) // 2], path="prompts[1].image")
    (error,) = caught.value.errors
    assert error.path == "prompts[1].image" and error.rule == "not_an_image"
    assert error.message.startswith("`prompts[1].image` could not be read")


def test_source_image_over_the_byte_limit_is_refused():
    with pytest.raises(JobValidationError) as caught:
        check_source_image(png(80, 60), Limits(max_source_bytes=20), path="prompts[0].image")
    (error,) = caught.value.errors
    assert error.rule == "max_source_bytes" and "the limit is 20 bytes" in error.message
    assert error.message.startswith("`prompts[0].image` is ")


def test_source_image_over_the_side_limit_is_refused_from_its_header():
    # A 4097 px wide image; then a 'bomb': a header claiming 100000x100000 with almost no data.
    with pytest.raises(JobValidationError) as caught:
        check_source_image(png(4097, 8), path="image")
    assert caught.value.errors[0].message == "`image` is 4097x8 px; the limit is 4096 px per side"
    bomb = bytearray(png(8, 8))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")  # and the chunk's CRC to match
    with pytest.raises(JobValidationError) as caught:
        check_source_image(bytes(bomb))
    assert caught.value.errors[0].rule == "max_source_side"


def test_source_image_of_another_format_is_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(JobValidationError, match="not a PNG, JPEG or WebP image"):
        check_source_image(buffer.getvalue())


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
    assert job_.name.startswith("foundry-")
    assert job_from_foundry({"prompt": "a lighthouse"})[0].variants.sizes == ["512x512"]


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
            "prompt": "", "size": "1000x999", "n": 65, "steps": 500, "output_format": "gif",
            "image_prompt": {"image": base64.b64encode(png(8, 8)).decode(), "strength": 1.5}, "qualty": "hd",
        })
    errors = {error.path: error for error in caught.value.errors}
    assert set(errors) == {"prompt", "size", "n", "steps", "output_format", "image_prompt.strength", "qualty"}
    assert errors["size"].message == "`size` must be a multiple of 8 per side, got '1000x999'"
    assert errors["n"].message == "`n` must be between 1 and 64, got 65"
    assert errors["steps"].message == "`steps` must be between 1 and 150, got 500"
    assert "`image_prompt.strength`" in errors["image_prompt.strength"].message


def test_foundry_prompt_is_required_and_body_must_be_an_object():
    with pytest.raises(JobValidationError, match="`prompt` is required"):
        job_from_foundry({"size": "512x512"})
    with pytest.raises(JobValidationError, match="JSON object"):
        job_from_foundry(["a"])


# --- the schema -------------------------------------------------------------------------------------------


def test_command_line_checks_a_job_file(tmp_path, capsys):
    from imagegen.spec import main

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
    assert committed == render_schema(), "regenerate: python -m imagegen.spec --schema > docs/job.schema.json"


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
