"""Clients written for Azure AI Foundry and for OpenAI work unchanged against our route.

A devhost with function keys on and a deployment key (`IMAGEGEN_API_KEY`): the OpenAI
Python SDK's `images.generate`, and a request the way the Azure AI Foundry samples send it.
"""

from __future__ import annotations

import base64
import io

import openai
import pytest
import requests
from PIL import Image

from tests.app.conftest import launch_app
from tests.app.storage_invariants import assert_job_storage_consistent

API_KEY = "deployment-key-for-tests-0123456789"
FUNCTION_KEY = "function-key-for-tests-9876543210"


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, FUNCTIONS_KEY=FUNCTION_KEY, IMAGEGEN_API_KEY=API_KEY)
    yield host
    host.stop()


def png(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_the_openai_sdk_generates_an_image_with_its_own_fields(keyed_app, store):
    client = openai.OpenAI(base_url=f"{keyed_app.url}/api", api_key=API_KEY, max_retries=0, timeout=120)
    result = client.images.generate(prompt="a lighthouse at dusk", model="stable-diffusion", size="64x64", n=2,
                                    response_format="b64_json", quality="standard", style="vivid", user="tester-1")
    assert len(result.data) == 2
    assert all(png(image.b64_json).size == (64, 64) for image in result.data)
    job_id = result.model_extra["jobId"]
    assert_job_storage_consistent(store, job_id)


@pytest.mark.parametrize("field, value", [("quality", "ultra"), ("style", "bogus"), ("response_format", "gif")])
def test_the_sdk_sees_a_value_openai_refuses_as_a_bad_request_naming_the_field(keyed_app, field, value):
    client = openai.OpenAI(base_url=f"{keyed_app.url}/api", api_key=API_KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(prompt="a lighthouse at dusk", size="64x64", **{field: value})
    problem = raised.value.body
    assert raised.value.status_code == 400 and isinstance(problem, dict)
    assert [(error["path"], error["rule"]) for error in problem["errors"]] == [(field, "one_of")]
    assert f"got {value!r}" in problem["errors"][0]["message"]


def test_the_sdk_sending_null_for_openai_fields_gets_the_defaults(keyed_app, store):
    client = openai.OpenAI(base_url=f"{keyed_app.url}/api", api_key=API_KEY, max_retries=0, timeout=120)
    result = client.images.generate(prompt="a lighthouse at dusk", size="64x64", n=None, quality=None, style=None,
                                    response_format=None, background=None, moderation=None, output_compression=None)
    assert len(result.data) == 1 and png(result.data[0].b64_json).size == (64, 64)
    assert_job_storage_consistent(store, result.model_extra["jobId"])


@pytest.mark.parametrize("route", ["images/generations", "image/generations"])  # the Foundry document says "image"
def test_a_foundry_sample_request_reads_the_image(keyed_app, store, route):
    # As the Azure AI Foundry samples for Stable Diffusion / Stable Image call a deployment.
    response = requests.post(
        f"{keyed_app.url}/api/{route}",
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        json={"prompt": "a lighthouse at dawn", "negative_prompt": "blurry", "size": "64x64",
              "output_format": "png", "seed": 7},
        timeout=120)
    body = response.json()
    assert png(body["image"]).format == "PNG"
    assert body["finish_reason"] == "SUCCESS" and body["seed"] == 7
    assert_job_storage_consistent(store, body["jobId"])


def test_the_azure_openai_api_key_header_works(keyed_app):
    response = requests.post(f"{keyed_app.url}/api/images/generations", headers={"api-key": API_KEY},
                             json={"prompt": "a lighthouse", "size": "64x64", "steps": 2}, timeout=120)
    assert response.status_code == 200, response.text
    assert png(response.json()["data"][0]["b64_json"]).size == (64, 64)


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-key-wrong-key-wrong"}, {"api-key": API_KEY[:-1]},
    {"Authorization": API_KEY},  # not a Bearer credential
])
def test_a_missing_or_wrong_key_is_401(keyed_app, headers):
    response = requests.post(f"{keyed_app.url}/api/images/generations", headers=headers,
                             json={"prompt": "a lighthouse", "size": "64x64", "steps": 2}, timeout=60)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert API_KEY not in response.text


def test_the_sdk_sees_a_wrong_key_as_an_authentication_error(keyed_app):
    client = openai.OpenAI(base_url=f"{keyed_app.url}/api", api_key="not-the-key-not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.images.generate(prompt="a lighthouse", size="64x64")


def test_function_keys_still_guard_the_other_routes(keyed_app):
    assert requests.get(f"{keyed_app.url}/api/jobs", timeout=30).status_code == 401
    assert requests.get(f"{keyed_app.url}/api/jobs", headers={"x-functions-key": FUNCTION_KEY}, timeout=30).status_code == 200
    # The deployment key opens only the images route.
    assert requests.get(f"{keyed_app.url}/api/jobs", headers={"api-key": API_KEY}, timeout=30).status_code == 401


def test_openai_only_fields_are_accepted_and_ignored(app):
    response = requests.post(f"{app.url}/api/images/generations", timeout=120, json={
        "prompt": "a lighthouse", "size": "64x64", "steps": 2, "response_format": "b64_json",
        "quality": "hd", "style": "natural", "user": "someone", "model": "dall-e-3"})
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["b64_json"]
