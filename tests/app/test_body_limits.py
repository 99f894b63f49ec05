"""Request bodies: the job byte limit holds before any parsing, and parsing never stalls the host."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

LIMIT = 1_000_000  # max_job_bytes, docs/jobs.md


def problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


@pytest.mark.parametrize("body, content_type", [
    # A tab cannot start a YAML token: parsed first, this would be a syntax error at line 1.
    (b"\tname: big\n" + b"# padding\n" * 500_000, "application/yaml"),
    (b"a prompt\n" * 600_000, "text/plain"),
    (json.dumps({"name": "big", "prompts": [{"text": "x" * 50}] * 80_000}).encode(), "application/json"),
], ids=["yaml", "text", "json"])
def test_a_job_body_over_the_byte_limit_is_413_before_it_is_read(app, body, content_type):
    assert len(body) > 4 * LIMIT
    response = requests.post(f"{app.url}/api/jobs", data=body, headers={"content-type": content_type}, timeout=60)
    errors = problem(response, 413)["errors"]
    assert [(e["path"], e["rule"]) for e in errors] == [("body", "max_job_bytes")]
    assert "1,000,000" in errors[0]["message"]


def test_a_foundry_body_over_the_limit_is_413(app):
    body = {"prompt": "a lighthouse", "negative_prompt": "x" * (15 * LIMIT)}
    response = requests.post(f"{app.url}/api/images/generations", json=body, timeout=60)
    assert problem(response, 413)["errors"][0]["rule"] == "max_job_bytes"


def test_health_answers_while_a_big_job_body_is_parsed(app):
    # ~200 kB of YAML takes the pure-Python parser seconds; then max_prompts refuses it.
    body = ("name: slow-parse\nprompts:\n" + "".join(f"- {{text: prompt {i}}}\n" for i in range(12_000))).encode()
    assert len(body) < LIMIT
    assert requests.get(f"{app.url}/api/health", timeout=300).status_code == 200  # its imports done
    answered_during_parse = 0
    with ThreadPoolExecutor(1) as pool:
        post = pool.submit(requests.post, f"{app.url}/api/jobs", data=body,
                           headers={"content-type": "application/yaml"}, timeout=300)
        while not post.done():
            health = requests.get(f"{app.url}/api/health", timeout=300)
            assert health.status_code == 200
            answered_during_parse += not post.done()
        assert problem(post.result(), 400)["errors"][0]["rule"] == "max_prompts"
    # Parsed on the host's event loop, no request is answered until the parse ends: at most
    # the one or two that slipped in before it began.
    assert answered_during_parse >= 5, answered_during_parse
