"""Every HTTP route answers bad input with 4xx problem details naming the field, never 5xx."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import urllib.parse

import pytest
import requests

from tests.app.conftest import tiny_job
from triggers.responses import problems_on_failure


def problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


@pytest.mark.parametrize("body, content_type, rule, words", [
    (b"", "application/json", None, "Send a job as JSON or YAML"),
    (b"{not json", "application/json", "syntax", "the job is not valid JSON at line 1, column 2"),
    (b"name: [unclosed", "application/yaml", "syntax", "the job is not valid YAML"),
    (b"[1, 2]", "application/json", "type", "the job must be a mapping"),
])
def test_unreadable_job_bodies_are_400(app, body, content_type, rule, words):
    response = requests.post(f"{app.url}/api/jobs", data=body, headers={"content-type": content_type}, timeout=30)
    found = problem(response, 400)
    # The whole body is at fault: the error's path is the job itself ("").
    assert [(e["path"], e["rule"]) for e in found.get("errors", [])] == ([("", rule)] if rule else [])
    assert words in found["detail"]


DEEP = 900  # levels: past the limit (32) and past where the parsers and walks used to overflow


@pytest.mark.parametrize("body, content_type", [
    (b"[" * DEEP + b"]" * DEEP, "application/json"),
    (b'{"name": "deep", "prompts": [{"text": "a", "negative": ' + b"[" * DEEP + b"]" * DEEP + b"}]}", "application/json"),
    (b"{a: " * DEEP, "application/yaml"),
    (b"name: deep\nprompts:\n" + b"- " * DEEP + b"x\n", "application/yaml"),
], ids=["json-lists", "json-in-a-job", "yaml-flow", "yaml-block"])
def test_a_job_nested_too_deeply_is_400_naming_the_limit(app, body, content_type):
    response = requests.post(f"{app.url}/api/jobs", data=body, headers={"content-type": content_type}, timeout=30)
    found = problem(response, 400)
    assert [(e["path"], e["rule"]) for e in found["errors"]] == [("", "max_depth")]
    assert "nests more than 32 levels deep (at line" in found["detail"] and "the limit is 32" in found["detail"]


def test_a_foundry_body_nested_too_deeply_is_400_naming_the_limit(app):
    body = b'{"prompt": "a lighthouse", "user": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    found = problem(requests.post(f"{app.url}/api/images/generations", data=body, timeout=30), 400)
    assert [(e["path"], e["rule"]) for e in found["errors"]] == [("", "max_depth")]
    assert "the body nests more than 32 levels deep" in found["detail"]


def test_a_review_decision_nested_too_deeply_is_400_naming_the_limit(app):
    job_id = app.submit(tiny_job("deep-review", seeds=1))
    body = b'{"approve": ' + b"[" * DEEP + b"]" * DEEP + b"}"
    found = problem(requests.post(f"{app.url}/api/jobs/{job_id}/review", data=body, timeout=30), 400)
    assert [(e["path"], e["rule"]) for e in found["errors"]] == [("", "max_depth")]
    assert "the decision nests more than 32 levels deep" in found["detail"]


@pytest.mark.parametrize("failure, status, title", [
    (RecursionError("maximum recursion depth exceeded in /home/site/wwwroot/x.py"), 400, "Request nested too deeply"),
    (MemoryError("could not allocate 8589934592 bytes"), 413, "Request too large"),
])
def test_running_out_of_stack_or_memory_on_a_request_is_a_4xx_naming_the_problem(failure, status, title, caplog):
    @problems_on_failure
    async def route(req):
        raise failure

    response = asyncio.run(route(None))
    assert response.status_code == status and response.mimetype == "application/problem+json"
    body = json.loads(response.get_body())
    assert (body["status"], body["title"]) == (status, title)
    assert "wwwroot" not in body["detail"] and "8589934592" not in body["detail"]
    assert str(failure) in caplog.text  # logged in full for us


def test_a_job_with_many_problems_lists_every_field(app):
    job = tiny_job("bad")
    job["variants"].update(steps=0, sizes=["65 x 64"], scheduler="fastest")
    job["prompts"].append({"text": "x", "image": "https://example.com/a.png"})
    body = problem(app.post_job(job), 400)
    paths = {error["path"] for error in body["errors"]}
    assert {"variants.steps", "variants.sizes[0]", "variants.scheduler", "prompts[1].image"} <= paths


def test_a_missing_source_image_is_named(app):
    job = tiny_job("missing-source")
    job["prompts"][0].update(image="nowhere.png", strength=0.5)
    body = problem(app.post_job(job), 400)
    assert body["errors"][0]["path"] == "prompts[0].image" and "nowhere.png" in body["errors"][0]["message"]


def test_a_corrupt_inline_image_is_rejected_before_the_model(app):
    job = tiny_job("corrupt-source")
    job["prompts"][0].update(image="data:image/png;base64," + base64.b64encode(b"not a png").decode(), strength=0.5)
    body = problem(app.post_job(job), 400)
    assert body["errors"][0]["path"] == "prompts[0].image"


def test_too_many_variants_is_rejected_with_the_count(app):
    body = problem(app.post_job(tiny_job("huge", seeds=65)), 400)
    assert any("64" in error["message"] for error in body["errors"])


@pytest.mark.parametrize("method, path", [
    ("GET", "jobs/no-such-job"), ("GET", "jobs/no-such-job/manifest"),
    ("GET", "jobs/no-such-job/images/v000"), ("POST", "jobs/no-such-job/cancel"),
])
def test_unknown_jobs_are_404(app, method, path):
    problem(requests.request(method, f"{app.url}/api/{path}", timeout=30), 404)


@pytest.mark.parametrize("params", [{"top": "0"}, {"top": "lots"}, {"continuationToken": "-4"}])
def test_bad_paging_is_400(app, params):
    problem(requests.get(f"{app.url}/api/jobs", params=params, timeout=30), 400)


@pytest.mark.parametrize("body, field", [
    ({}, "prompt"),
    ({"prompt": "x", "size": "huge"}, "size"),
    ({"prompt": "x", "image_prompt": {"image": "%%%", "strength": 0.5}}, "image_prompt.image"),
])
def test_bad_foundry_bodies_are_400_naming_the_field(app, body, field):
    result = problem(requests.post(f"{app.url}/api/images/generations", json=body, timeout=30), 400)
    assert any(error["path"].startswith(field) for error in result["errors"]), result


def test_a_non_json_foundry_body_is_400(app):
    problem(requests.post(f"{app.url}/api/images/generations", data=b"prompt=x", timeout=30), 400)
    problem(requests.post(f"{app.url}/api/images/generations", params={"timeout": "soon"}, json={"prompt": "x"},
                          timeout=30), 400)


@pytest.mark.parametrize("image", ["~/.ssh/id_rsa", "%2e%2e/x.png", "azure-webjobs-hosts/x.png", "../x.png"])
def test_an_image_outside_the_source_containers_is_400_naming_the_field(app, image):
    job = tiny_job("outside")
    job["prompts"][0].update(image=image, strength=0.5)
    body = problem(app.post_job(job), 400)
    assert [error["path"] for error in body["errors"]] == ["prompts[0].image"], body
    assert "Error" not in json.dumps(body), body


ROUTES_WITH_AN_ID = [("GET", "/api/jobs/{id}"), ("GET", "/api/jobs/{id}/manifest"), ("GET", "/api/jobs/{id}/images/v000"),
                     ("GET", "/api/jobs/{id}/published/v000"), ("POST", "/api/jobs/{id}/cancel"),
                     ("POST", "/api/jobs/{id}/review"), ("GET", "/api/gallery/jobs/{id}")]
NOT_JOB_IDS = [".", "%2e", "%2e%2e", "J%23x", "J%3Fx", "J%3Fx%3D1", "a%20b", "-x", "x" * 129]


@pytest.mark.parametrize("method, path", [(method, route.format(id=job_id)) for method, route in ROUTES_WITH_AN_ID
                                          for job_id in NOT_JOB_IDS])
def test_what_is_no_job_id_is_404_on_every_route_that_takes_one(app, method, path):
    # Sent raw: requests would remove the dot segments before they reach the server.
    parts = urllib.parse.urlsplit(app.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request(method, path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 404, body
    assert response.getheader("content-type").startswith("application/problem+json"), body
    assert b"Error" not in body, body


def test_an_unexpected_failure_is_a_generic_500_problem(caplog):
    @problems_on_failure
    async def route(req):
        raise TypeError("secret internal detail at /home/site/wwwroot")

    response = asyncio.run(route(None))
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert b"secret" not in response.get_body() and json.loads(response.get_body())["title"] == "Internal error"
    assert "secret internal detail" in caplog.text  # logged in full for us


@pytest.mark.parametrize("body, content_type, path", [
    (b'{"name": "lone", "prompts": [{"text": "a red \\ud800 bicycle"}]}', "application/json", "prompts[0].text"),
    (b'name: lone\nprompts: [{text: "a bicycle"}]\nvariants: {styles: ["ink \\udfff"]}\n', "application/yaml",
     "variants.styles[0]"),
])
def test_text_with_a_lone_surrogate_is_refused_at_intake_with_the_field_named(app, body, content_type, path):
    # Such text cannot be stored as UTF-8: accepted, the job would fail when writing its manifest.
    response = requests.post(f"{app.url}/api/jobs", data=body, headers={"content-type": content_type}, timeout=30)
    errors = problem(response, 400)["errors"]
    assert [(error["path"], error["rule"]) for error in errors] == [(path, "lone_surrogate")]
    assert "surrogate" in errors[0]["message"] and "U+D" in errors[0]["message"]


@pytest.mark.parametrize("suffix", ["%23x", "%3Fx", "%3Fshow_input%3Dfalse"])
def test_an_id_with_a_hash_or_question_mark_never_answers_for_the_job_before_it(app, suffix):
    job_id = app.submit(tiny_job("hashed"))
    assert requests.get(f"{app.url}/api/jobs/{job_id}", timeout=30).status_code == 200
    for method, route in ROUTES_WITH_AN_ID:
        response = requests.request(method, app.url + route.format(id=job_id + suffix), json={"approve": ["v000"]},
                                    timeout=30)
        assert response.status_code == 404, (route, response.text)
        assert job_id not in response.json().get("title", ""), response.text
