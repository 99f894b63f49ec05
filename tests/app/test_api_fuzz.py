"""Property-based API fuzzing: Schemathesis runs against devhost from our own OpenAPI document.

Every operation in `GET /api/openapi.json` gets generated requests, valid and not: no
answer may be a 5xx, every 4xx must be a problem-details body, and every answer must
conform to the document (status, content type, body schema). The devhost runs with tight
limits, so a job the fuzzer gets accepted is two 64 px images of two steps.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.app.conftest import launch_app

EXAMPLES_PER_OPERATION = 5  # per operation and phase; the whole fuzz stays within about a minute
STATUSES: Counter = Counter()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, IMAGEGEN_MAX_VARIANTS="2",
                      IMAGEGEN_MAX_STEPS="2", IMAGEGEN_MAX_SIDE="64", IMAGEGEN_MAX_SOURCE_SIDE="64",
                      IMAGEGEN_DEFAULT_SIZE="64x64", IMAGEGEN_DEFAULT_STEPS="2")
    yield host
    host.stop()
    print(f"\nAPI fuzz: {sum(STATUSES.values())} requests; status codes {dict(sorted(STATUSES.items()))}")


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
    if case.operation.path == "/api/images/generations":
        # How long the route waits for a job is not what is fuzzed here: at most a second.
        wait = (case.query or {}).get("timeout")
        if not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait > 1:
            case.query = {**(case.query or {}), "timeout": 1}
    response = case.call_and_validate(
        base_url=fuzz_app.url, timeout=120,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance, problem_details_on_4xx])
    STATUSES[response.status_code] += 1


def test_the_document_is_openapi_3_1_and_describes_every_route(app):
    document = requests.get(f"{app.url}/api/openapi.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    assert {"/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/manifest", "/api/jobs/{id}/images/{variant}",
            "/api/jobs/{id}/cancel", "/api/jobs/{id}/review", "/api/jobs/{id}/published/{variant}",
            "/api/images/generations", "/api/health"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"JobSpec", "Manifest", "Problem", "FoundryRequest", "FoundryResponse"} <= set(schemas)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"] == {"application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}}}, (method, path, status)
