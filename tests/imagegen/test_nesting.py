"""Documents nested too deeply are refused, naming the limit, before any parser or walk recurses."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from imagegen.core.documents import load_document, load_json
from imagegen.core.nesting import MAX_DEPTH, TooDeep, check_data_depth, check_json_depth
from imagegen.core.storable_text import storable_document
from imagegen.core.types import JobValidationError
from imagegen.jobs.intake import read_job_file
from imagegen.jobs.schedule_files import parse_schedule
from imagegen.jobs.spec import parse_job


def nested_list(depth: int, inner: object = 1) -> object:
    value = inner
    for _ in range(depth):
        value = [value]
    return value


def only_error(raised: pytest.ExceptionInfo) -> tuple[str, str, str]:
    (error,) = raised.value.errors
    return error.path, error.rule, error.message


# --- JSON text, measured before it is parsed ------------------------------------------------------


def test_json_at_the_limit_is_read_and_one_deeper_is_refused_where_it_passes_it():
    assert load_document("[" * MAX_DEPTH + "]" * MAX_DEPTH, filename="job.json") == nested_list(MAX_DEPTH - 1, [])
    with pytest.raises(JobValidationError) as raised:
        load_document('{"prompts":\n' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", filename="job.json")
    path, rule, message = only_error(raised)
    assert (path, rule) == ("", "max_depth")
    assert message.startswith("the job nests more than 32 levels deep (at line 2, column 32); the limit is 32")


@pytest.mark.parametrize("depth", [900, 100_000])
def test_json_hundreds_or_thousands_deep_is_a_max_depth_error_not_a_recursion_error(depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth):
        with pytest.raises(JobValidationError) as raised:
            load_document(text, filename="job.json")
        assert only_error(raised)[1] == "max_depth"


def test_brackets_inside_json_strings_do_not_count():
    deep_text = "[" * 100 + '\\"[{' + "{" * 100
    document = json.dumps({"prompts": [{"text": deep_text}], "b": "\\", "c": ["]"]})
    check_json_depth(document)
    assert load_document(document, filename="job.json")["prompts"][0]["text"] == deep_text


def test_a_json_body_as_bytes_is_read_as_json_loads_reads_it():
    assert load_json('{"approve": ["v000"]}'.encode("utf-16")) == {"approve": ["v000"]}
    with pytest.raises(JobValidationError) as raised:
        load_json(b"[" * 600, "the decision")
    assert only_error(raised)[2].startswith("the decision nests more than 32 levels deep")
    with pytest.raises(ValueError):
        load_json(b"{not json")


# --- YAML, measured as it is composed ---------------------------------------------------------------


@pytest.mark.parametrize("text, where", [
    ("[" * 900, "line 1, column 33"),                                    # flow sequences
    ("{a: " * 900, "line 1, column 129"),                                # flow mappings
    ("- " * 900 + "x", "line 1, column 65"),                             # block sequences on one line
    ("".join("  " * level + "a:\n" for level in range(40)) + "  " * 40 + "x: 1\n", "line 33, column 65"),
], ids=["flow-sequences", "flow-mappings", "block-sequences", "block-mappings"])
def test_yaml_past_the_limit_is_refused_where_it_passes_it(text, where):
    with pytest.raises(JobValidationError) as raised:
        load_document(text, filename="job.yaml")
    path, rule, message = only_error(raised)
    assert (path, rule) == ("", "max_depth")
    assert f"(at {where})" in message


def test_yaml_at_the_limit_is_read():
    assert load_document("[" * MAX_DEPTH + "]" * MAX_DEPTH, filename="job.yaml") == nested_list(MAX_DEPTH - 1, [])


def test_a_dropped_file_600_deep_is_refused_as_a_job_error():
    for name, text in (("deep.json", "[" * 600 + "]" * 600), ("deep.yaml", "{a: " * 600)):
        with pytest.raises(JobValidationError) as raised:
            read_job_file(text.encode(), name)
        assert only_error(raised)[1] == "max_depth"


def test_a_schedule_file_too_deep_names_the_file():
    text = yaml.safe_dump({"cron": "0 0 9 * * MON", "job": {"name": "x", "prompts": nested_list(40, {"text": "a"})}})
    with pytest.raises(JobValidationError) as raised:
        parse_schedule(text.encode(), "weekly.yaml")
    path, rule, message = only_error(raised)
    assert (path, rule) == ("file", "max_depth") and message.startswith("`weekly.yaml` nests more than 32")


def test_a_schedule_file_may_not_use_aliases_either():
    with pytest.raises(JobValidationError, match="aliases"):
        parse_schedule(b"cron: &c '0 0 9 * * MON'\nname: *c\njob: {prompts: [{text: a}]}\n", "weekly.yaml")


# --- parsed data, measured with an explicit stack -----------------------------------------------------


def test_data_too_deep_names_the_first_field_past_the_limit():
    with pytest.raises(TooDeep) as raised:
        check_data_depth({"prompts": [{"text": "a"}], "variants": {"sizes": nested_list(40)}})
    assert raised.value.field == "variants.sizes" + "[0]" * 30
    with pytest.raises(JobValidationError) as refused:
        parse_job({"name": "deep", "prompts": nested_list(40)})
    path, rule, message = only_error(refused)
    assert (path, rule) == ("prompts" + "[0]" * 31, "max_depth")
    assert "the limit is 32 levels" in message


def test_storable_document_takes_data_of_any_depth_without_recursing():
    deep = nested_list(200_000)
    with pytest.raises(JobValidationError) as raised:
        storable_document(deep)
    assert only_error(raised)[1] == "max_depth"
    check_data_depth(nested_list(MAX_DEPTH - 1, {"a": 1}))
    with pytest.raises(TooDeep):
        check_data_depth(nested_list(MAX_DEPTH, {"a": 1}))


def _recursive_reference(value):
    """What storable_document did when it recursed: the copy its loop must still make."""
    if isinstance(value, list):
        return [_recursive_reference(item) for item in value]
    if isinstance(value, dict):
        return {key: _recursive_reference(item) for key, item in value.items()}
    return value


JSON_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@given(JSON_DATA)
def test_the_storable_copy_is_the_same_document_in_the_same_order(document):
    copied = storable_document(document)
    assert copied == _recursive_reference(document)
    assert json.dumps(copied) == json.dumps(document)  # keys in the same order


def test_lone_surrogates_are_reported_in_document_order():
    with pytest.raises(JobValidationError) as raised:
        storable_document({"a": ["\ud800", {"b": "\udfff"}], "\ud801": "x", "c": "\udc00"})
    assert [error.path for error in raised.value.errors] == ["a[0]", "a[1].b", "'\\ud801'", "c"]
