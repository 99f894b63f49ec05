"""Property-based API fuzzing: Schemathesis runs against devhost from our own OpenAPI document.

Every operation in `GET /api/openapi.json` gets generated requests, valid and not: no
answer may be a 5xx, every 4xx must be a problem-details body, and every answer must
conform to the document (status, content type, body schema). The devhost runs with tight
limits, so a job the fuzzer gets accepted is two 64 px images of two steps.

Two things a schema never makes Schemathesis draw are drawn here and held to the same
checks: bodies nested 33 to 100,000 levels deep on every route that reads one (a 400
naming the limit, never a 500), and any value at all in OpenAI's own fields on the
Foundry route (an image, or a 400 naming the field).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from imagegen.jobs.foundry_body import OPENAI_CHOICES, OPENAI_TEXT, OPENAI_WHOLE_NUMBERS
from tests.app.conftest import launch_app, tiny_job

EXAMPLES_PER_OPERATION = 5  # per operation and phase; the whole fuzz stays within about a minute
OPENAI_EXAMPLES = 20  # Foundry bodies with drawn values in OpenAI's fields
STATUSES: Counter = Counter()
HOSTILE: Counter = Counter()  # the deep bodies and OpenAI values, by status


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, IMAGEGEN_MAX_VARIANTS="2",
                      IMAGEGEN_MAX_STEPS="2", IMAGEGEN_MAX_SIDE="64", IMAGEGEN_MAX_SOURCE_SIDE="64",
                      IMAGEGEN_DEFAULT_SIZE="64x64", IMAGEGEN_DEFAULT_STEPS="2")
    yield host
    host.stop()
    print(f"\nAPI fuzz: {sum(STATUSES.values())} requests; status codes {dict(sorted(STATUSES.items()))}")
    print(f"hostile bodies: {sum(HOSTILE.values())} requests; status codes {dict(sorted(HOSTILE.items()))}")


@pytest.fixture(scope="module")
def api_schema(fuzz_app):
    return schemathesis.openapi.from_url(f"{fuzz_app.url}/api/openapi.json", timeout=30)


schema = schemathesis.pytest.from_fixture("api_schema")


def problem_details_on_4xx(ctx, response, case):
    """Every 4xx the app gives is RFC 9457 problem details with the status, a title and a
    detail. (A method no route has, TRACE say, is answered by the host itself, as Azure's is.)"""
    if case.method.upper() != case.operation.method.upper():
        return None
    if 400 <= response.status_code < 500:
        assert response.headers.get("content-type", [""])[0].startswith("application/problem+json"), \
            f"{response.status_code} is not problem+json: {response.headers.get('content-type')}"
        body = json.loads(response.text)
        assert body["status"] == response.status_code and body["title"] and body["detail"], body
    return None


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)
def test_every_answer_conforms_and_no_input_makes_a_5xx(case, fuzz_app):
    if case.operation.path in ("/api/images/generations", "/api/images/edits"):
        # How long the route waits for a job is not what is fuzzed here: at most a second.
        wait = (case.query or {}).get("timeout")
        if not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait > 1:
            case.query = {**(case.query or {}), "timeout": 1}
    response = case.call_and_validate(
        base_url=fuzz_app.url, timeout=120,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance, problem_details_on_4xx])
    STATUSES[response.status_code] += 1


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          problem_details_on_4xx]


@pytest.fixture(scope="module")
def a_job(fuzz_app) -> str:
    """A job that exists, so a review body is read (an unknown id is a 404 before that)."""
    response = requests.post(f"{fuzz_app.url}/api/jobs", json=tiny_job("fuzz-review", seeds=1), timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["jobId"]


def deep(depth: int, shape: str) -> bytes:
    if shape == "lists":
        return b"[" * depth + b"]" * depth
    if shape == "objects":
        return b'{"a":' * depth + b'"[{"' + b"}" * depth
    return b"[" * depth   # never closed


@pytest.mark.parametrize("depth", [33, 900, 100_000])
@pytest.mark.parametrize("shape", ["lists", "objects", "unclosed"])
@pytest.mark.parametrize("route", ["jobs-json", "jobs-yaml", "foundry", "review"])
def test_a_body_nested_too_deeply_is_a_400_naming_the_limit_on_every_route(fuzz_app, api_schema, a_job, route,
                                                                           shape, depth):
    path, method, headers, params = {
        "jobs-json": ("/api/jobs", "POST", {"content-type": "application/json"}, {}),
        "jobs-yaml": ("/api/jobs", "POST", {"content-type": "application/yaml"}, {}),
        "foundry": ("/api/images/generations", "POST", {"content-type": "application/json"}, {"timeout": 1}),
        "review": ("/api/jobs/{id}/review", "POST", {"content-type": "application/json"}, {}),
    }[route]
    body = deep(depth, shape)
    if route == "foundry":
        body = b'{"prompt": "a lighthouse", "user": ' + body + b"}"
    case = api_schema[path][method].Case(path_parameters={"id": a_job} if "{id}" in path else {}, query=params)
    url = fuzz_app.url + path.replace("{id}", a_job)
    response = requests.post(url, data=body, headers=headers, params=params, timeout=60)
    HOSTILE[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)
    assert response.status_code == 400, response.text
    assert [error["rule"] for error in response.json()["errors"]] == ["max_depth"]


ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(allow_nan=False), st.text(max_size=8),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
OPENAI_VALUES = {
    **{field: st.sampled_from(choices) | ANY_VALUE for field, choices in OPENAI_CHOICES.items()},
    **{field: st.text(max_size=12) | ANY_VALUE for field in OPENAI_TEXT},
    **{field: st.integers(low - 2, high + 2) | ANY_VALUE for field, (low, high) in OPENAI_WHOLE_NUMBERS.items()},
    "stream": st.just(False) | ANY_VALUE,
}


@settings(max_examples=OPENAI_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(fields=st.fixed_dictionaries({}, optional=OPENAI_VALUES))
def test_any_value_in_openais_fields_is_an_image_or_a_400_naming_the_field(fuzz_app, api_schema, fields):
    body = {"prompt": "a lighthouse", "size": "64x64", "steps": 2, **fields}
    case = api_schema["/api/images/generations"]["POST"].Case(body=body, media_type="application/json",
                                                              query={"timeout": 1})
    response = case.call_and_validate(base_url=fuzz_app.url, timeout=60, checks=CHECKS)
    HOSTILE[response.status_code] += 1
    assert response.status_code in (200, 202, 400), response.text
    if response.status_code == 400:
        assert {error["path"] for error in response.json()["errors"]} <= set(fields), response.text


def test_the_document_is_openapi_3_1_and_describes_every_route(app):
    document = requests.get(f"{app.url}/api/openapi.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    assert {"/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/manifest", "/api/jobs/{id}/images/{variant}",
            "/api/jobs/{id}/cancel", "/api/jobs/{id}/review", "/api/jobs/{id}/published/{variant}",
            "/api/images/generations", "/api/images/edits", "/api/health"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"JobSpec", "Manifest", "Problem", "FoundryRequest", "FoundryResponse"} <= set(schemas)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if (path, status) == ("/api/health", "503"):
                    # Health stays health's own body when unhealthy (its `problems` say why): what
                    # probes and dashboards read, in the one shape, ok or not.
                    assert answer["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
                elif status.startswith(("4", "5")):
                    assert answer["content"] == {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)
