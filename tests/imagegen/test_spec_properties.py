"""Whatever a job file holds, parse_job + expand either give at most max_variants variants
or raise JobValidationError with messages; nothing else escapes (no TypeError, no hang)."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegen.core.types import JobValidationError
from imagegen.jobs.foundry_body import job_from_foundry
from imagegen.jobs.spec import Limits, parse_job
from imagegen.jobs.variants import batches, expand

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**12), st.floats(),
    st.text(max_size=12), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
sizes = st.one_of(
    st.sampled_from(["512x512", "768x512", "64x2048", "500x512", "4096x8", "0x0", "512X512", "x", ""]),
    st.from_regex(r"[0-9]{1,5}x[0-9]{1,5}", fullmatch=True),
)
images = st.sampled_from(["cat.png", "inputs/a/b.png", "https://x/y.png", "//x", "../a.png", "a//b", "", "c:\\a"])


def maybe_list(items, most):
    """A list (sometimes long: past every limit) or something that is not a list."""
    return st.one_of(st.lists(items, max_size=most), st.lists(items, min_size=most, max_size=most * 3), junk)


prompts = st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=30), st.just(" "), junk)},
    optional={
        "negative": st.one_of(st.text(max_size=10), junk),
        "image": st.one_of(images, st.text(max_size=10), junk),
        "strength": st.one_of(st.floats(), junk),
        "steps": junk,  # a field that belongs elsewhere
    },
)
axes = st.fixed_dictionaries(
    {},
    optional={
        "seeds": st.one_of(st.integers(min_value=-3, max_value=10**15), maybe_list(st.integers(-2, 2**33), 70), junk),
        "styles": maybe_list(st.one_of(st.text(max_size=10), junk), 20),
        "sizes": maybe_list(st.one_of(sizes, junk), 8),
        "guidance": maybe_list(st.one_of(st.floats(), st.integers(-5, 40), junk), 8),
        "steps": st.one_of(st.integers(-5, 10**9), junk),
        "scheduler": st.one_of(st.sampled_from(["dpmpp", "euler", "euler_a", "ddim", "lcm", "karras"]), junk),
        "seed": junk,
    },
)
jobs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["spring", "Spring Sale", "a" * 65, "../x"]), st.text(max_size=8), junk),
        "prompts": st.one_of(st.lists(prompts, max_size=4), st.lists(prompts, min_size=30, max_size=40), junk),
        "variants": st.one_of(axes, junk),
        "output": st.one_of(st.fixed_dictionaries({"format": st.one_of(st.sampled_from(["png", "jpeg", "webp", "gif"]), junk)}), junk),
        "extra": junk,
    },
)
# Well-typed jobs whose numbers straddle every limit: these reach expand() often.
typed_jobs = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["spring", "a.b_c-1"] * 3 + ["Spring"]),
        "prompts": st.lists(
            st.fixed_dictionaries(
                {"text": st.sampled_from(["a cat", "a dog", "an owl"] * 4 + ["", "x" * 2001])},
                optional={"image": st.sampled_from(["cat.png", "inputs/a/b.png"] * 3 + ["https://x/y.png"]), "strength": st.floats(0, 1.05)},
            ),
            min_size=1, max_size=4,
        ),
        "variants": st.fixed_dictionaries(
            {},
            optional={
                "seeds": st.one_of(st.integers(0, 70), st.lists(st.integers(0, 2**32), min_size=1, max_size=8, unique=True)),
                "styles": st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True),
                "sizes": st.lists(st.sampled_from(["512x512", "768x512", "64x2048", "2048x2048", "500x512"]), min_size=1, max_size=3, unique=True),
                "guidance": st.lists(st.floats(0, 31), min_size=1, max_size=3, unique=True),
                "steps": st.integers(0, 160),
            },
        ),
    }
)
limits = st.builds(Limits, max_variants=st.integers(1, 64), max_prompts=st.integers(1, 32), max_steps=st.integers(1, 150))


def check(data, limit: Limits, **kwargs) -> None:
    try:
        job = parse_job(data, limits=limit, **kwargs)
    except JobValidationError as error:
        assert error.errors and all(item.message and item.rule for item in error.errors)
        return
    variants = expand(job)
    assert 1 <= len(variants) <= limit.max_variants
    assert len({variant.id for variant in variants}) == len(variants)
    assert sum(len(batch.variants) for batch in batches(variants, 3)) == len(variants)


@FAST
@given(jobs, limits)
def test_any_job_dict_is_accepted_within_limits_or_refused_with_field_errors(data, limit):
    check(data, limit)


@FAST
@given(typed_jobs, limits)
def test_well_typed_jobs_expand_within_limits_or_name_the_limit(data, limit):
    check(data, limit)


@FAST
@given(jobs, limits, st.booleans())
def test_any_job_file_text_is_accepted_within_limits_or_refused(data, limit, as_yaml):
    try:
        text = yaml.safe_dump(data) if as_yaml else json.dumps(data)
    except (ValueError, yaml.YAMLError):
        return
    check(text.encode("utf-8"), limit, filename="job.yaml" if as_yaml else None)


@FAST
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_arbitrary_bytes_are_refused_cleanly(data):
    check(data, Limits())


@FAST
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "prompt": st.one_of(st.text(max_size=20), junk), "negative_prompt": st.one_of(st.text(max_size=5), junk),
            "size": st.one_of(sizes, junk), "output_format": st.one_of(st.sampled_from(["png", "jpg"]), junk),
            "seed": st.one_of(st.integers(-2, 2**33), junk), "n": st.one_of(st.integers(-2, 10**12), junk),
            "steps": st.one_of(st.integers(-2, 300), junk), "num_inference_steps": junk, "model": junk,
            "image_prompt": st.one_of(st.fixed_dictionaries({"image": st.one_of(st.text(max_size=12), junk)}, optional={"strength": junk}), junk),
            "quality": junk,
        },
    ),
)
def test_any_foundry_body_is_accepted_within_limits_or_refused(body):
    try:
        job, source = job_from_foundry(body)
    except JobValidationError as error:
        assert error.errors and all(item.message for item in error.errors)
        return
    assert source is None  # no generated text decodes to a valid image
    assert 1 <= len(expand(job)) <= Limits().max_variants
