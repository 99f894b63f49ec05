"""A job's variants and GPU batches: the fan-out in a stable order, the same in every process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagegen.core.types import Batch
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import batches, expand, split_batch
from tests.imagegen.conftest import CAMPAIGN_YAML, job

ROOT = Path(__file__).resolve().parents[2]


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
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import expand
job = parse_job(sys.stdin.read())
print(json.dumps([v.model_dump(mode="json") for v in expand(job)]))
"""


def test_same_job_same_variants_in_another_process():
    job_ = parse_job(CAMPAIGN_YAML)
    here = json.dumps([v.model_dump(mode="json") for v in expand(job_)])
    there = subprocess.run(
        [sys.executable, "-c", EXPAND_SCRIPT], input=CAMPAIGN_YAML, capture_output=True, text=True,
        check=True, env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=ROOT,
    ).stdout.strip()
    assert there == here


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


def test_split_batch_cuts_a_batch_into_calls_in_order():
    variants = expand(parse_job(job(seeds=5)))
    (batch,) = batches(variants, 16)
    calls = list(split_batch(batch, 2))
    assert [[v.index for v in call.variants] for call in calls] == [[0, 1], [2, 3], [4]]
    assert {call.id for call in calls} == {batch.id}
    assert [len(call.variants) for call in split_batch(batch, 0)] == [1] * 5  # never an empty call
    assert isinstance(calls[0], Batch)
