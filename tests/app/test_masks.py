"""Masked edits end to end: devhost + Azurite + the tiny model, with function keys and a
deployment key (one host for the module). A JSON job with its image and mask inline as
`data:` URLs, and the OpenAI SDK's `images.edit` against `POST /api/images/edits`."""

from __future__ import annotations

import base64
import io

import numpy as np
import openai
import pytest
import requests
from PIL import Image

from imagegen.checks import provenance
from imagegen.records.metadata import read_parameters
from tests.app.conftest import ENDED, launch_app
from tests.app.storage_invariants import assert_job_storage_consistent
from tests.devhost.conftest import REPO_ROOT
from tests.waiting import wait_until

DEV_CA = REPO_ROOT / ".devhost" / "c2pa" / "dev-ca.pem"  # devhost's signer, as tests/app/test_content_credentials.py

API_KEY = "deployment-key-for-masks-0123456789"
FUNCTION_KEY = "function-key-for-masks-9876543210"
KEYED = {"x-functions-key": FUNCTION_KEY}


@pytest.fixture(scope="module")
def host(tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, FUNCTIONS_KEY=FUNCTION_KEY, IMAGEGEN_API_KEY=API_KEY)
    yield host
    host.stop()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def source() -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def right_half_kept(image: Image.Image) -> bool:
    made, kept = np.asarray(image.convert("RGB"), dtype=np.int16), np.asarray(source(), dtype=np.int16)
    return bool(np.abs(made[:, 34:] - kept[:, 34:]).max() <= 2 and np.abs(made[:, :30] - kept[:, :30]).mean() > 20)


def test_a_masked_job_with_inline_image_and_mask_inpaints_and_records_the_mask(host, store):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # white: repaint the left half
    job = {"name": "masked", "prompts": [{"text": "a red sneaker", "image": data_url(png_bytes(source())),
                                          "mask": data_url(png_bytes(mask))}],
           "variants": {"seeds": 1, "sizes": ["64x64"], "steps": 2}}
    response = requests.post(f"{host.url}/api/jobs", json=job, headers=KEYED, timeout=60)
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    status = wait_until(lambda: requests.get(f"{host.url}/api/jobs/{job_id}", headers=KEYED, timeout=30).json(),
                        lambda state: state["status"] in ENDED, timeout=180, interval=0.25, what="the masked job")
    assert status["status"] == "completed", status
    assert_job_storage_consistent(store, job_id)
    manifest = requests.get(f"{host.url}/api/jobs/{job_id}/manifest", headers=KEYED, timeout=30).json()
    (variant,) = manifest["variants"]
    assert variant["mask"].startswith("inputs/") and store.get(variant["mask"]) == png_bytes(mask)
    assert variant["source_image"].startswith("inputs/") and variant["strength"] == 1.0
    data = store.get(variant["blob"])
    assert right_half_kept(Image.open(io.BytesIO(data)))
    # C2PA: the source is the ingredient, the mask is not (a selection over it); the image's
    # own parameters name the mask.
    found = provenance.verify(data, "png", DEV_CA.read_text())
    assert found.valid and found.ingredients == [variant["source_image"].rsplit("/", 1)[-1]]
    assert read_parameters(data)["mask"] == variant["mask"]


def test_a_mask_without_an_image_is_refused_naming_it(host):
    job = {"name": "maskless", "prompts": [{"text": "a shoe", "mask": "m.png"}]}
    response = requests.post(f"{host.url}/api/jobs", json=job, headers=KEYED, timeout=60)
    assert response.status_code == 400
    assert [(e["path"], e["rule"]) for e in response.json()["errors"]] == [("prompts[0].mask", "mask_without_image")]


def test_the_openai_sdk_edits_an_image_with_a_transparent_mask(host, store):
    client = openai.OpenAI(base_url=f"{host.url}/api", api_key=API_KEY, max_retries=0, timeout=120)
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # OpenAI's convention: transparent is edited
    result = client.images.edit(image=("shoe.png", png_bytes(source()), "image/png"),
                                mask=("mask.png", png_bytes(mask), "image/png"), prompt="a red sneaker",
                                n=2, size="64x64", response_format="b64_json", model="dall-e-2")
    assert len(result.data) == 2
    assert all(right_half_kept(Image.open(io.BytesIO(base64.b64decode(image.b64_json)))) for image in result.data)
    assert_job_storage_consistent(store, result.model_extra["jobId"])


def test_the_edit_route_refuses_a_mask_without_alpha_and_a_missing_image(host):
    client = openai.OpenAI(base_url=f"{host.url}/api", api_key=API_KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(image=("shoe.png", png_bytes(source()), "image/png"),
                           mask=("mask.png", png_bytes(Image.new("L", (64, 64), 255)), "image/png"), prompt="x")
    assert [(e["path"], e["rule"]) for e in raised.value.body["errors"]] == [("mask", "mask_alpha")]
    response = requests.post(f"{host.url}/api/images/edits", headers={"api-key": API_KEY},
                             files={"mask": ("m.png", b"not an image", "image/png")}, data={"prompt": "x"}, timeout=60)
    assert response.status_code == 400
    assert {(e["path"], e["rule"]) for e in response.json()["errors"]} == {("image", "required")}
    assert requests.post(f"{host.url}/api/images/edits", timeout=60,
                         files={"image": ("i.png", png_bytes(source()), "image/png")}).status_code == 401
