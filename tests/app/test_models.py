"""A model per job, end to end: devhost with a catalog of tiny random models of every family.

The catalog (`IMAGEGEN_MODELS`) names an SDXL, an SD 3 and a FLUX.1 dev folder built here
(tests/imagegen/tiny_families.py, `save_pretrained`); the default is the tiny SD 1.x. One
job per family, each with a txt2img and an img2img prompt, completes through the whole app
(moderation, batches, checks, manifest), and the manifest records each image's family,
catalog name and config hash. `IMAGEGEN_MAX_LOADED_MODELS` is 1: the jobs take turns
loading their models.
"""

from __future__ import annotations

import io
import uuid

import pytest
import requests
from PIL import Image

from tests.app.conftest import AppClient, launch_app
from tests.imagegen.tiny_families import save_family

FAMILIES = {"default": "sd1", "sdxl": "sdxl", "sd3": "sd3", "flux": "flux"}


@pytest.fixture(scope="module")
def models_app(tmp_path_factory, storage_connection_string, store):
    root = tmp_path_factory.mktemp("models")
    for name in ("sdxl", "sd3", "flux"):
        save_family(name, root / name)
    catalog = root / "models.yaml"
    catalog.write_text("models:\n  sdxl: {source: sdxl}\n  sd3: {source: sd3}\n  flux: {source: flux}\n", encoding="utf-8")
    host = launch_app(tmp_path_factory, storage_connection_string, IMAGEGEN_MODELS=str(catalog),
                      IMAGEGEN_MAX_LOADED_MODELS="1")
    yield AppClient(host.url, store)
    host.stop()


def source_image(store) -> str:
    """An img2img source in `inputs/`, by its bare name."""
    data = io.BytesIO()
    Image.new("RGB", (80, 64), (200, 40, 40)).save(data, format="PNG")
    name = f"models-{uuid.uuid4().hex[:8]}.png"
    store.put(f"inputs/{name}", data.getvalue())
    return name


def family_job(model: str, image: str) -> dict:
    job = {
        "name": f"model-{model}",
        "prompts": [{"text": "a red bicycle leaning on a wall"},
                    {"text": "the same bicycle, watercolor", "image": image, "strength": 0.6}],
        "variants": {"seeds": 1, "sizes": ["64x64"], "steps": 2},
    }
    if model != "default":
        job["model"] = model
    return job


@pytest.mark.timeout(600)
def test_a_job_per_family_makes_txt2img_and_img2img_images_and_the_manifest_records_the_family(models_app, store):
    image = source_image(store)
    jobs = {model: models_app.submit(family_job(model, image)) for model in FAMILIES}
    for model, job_id in jobs.items():
        done = models_app.wait(job_id, timeout=300)
        assert done["status"] == "completed", (model, done)
        variants = models_app.manifest(job_id)["variants"]
        assert [bool(v["source_image"]) for v in variants] == [False, True]  # txt2img, then img2img
        assert {v["model_family"] for v in variants} == {FAMILIES[model]}, model
        assert {v["model_name"] for v in variants} == {None if model == "default" else model}
        hashes = {v["model_config_sha256"] for v in variants}
        assert len(hashes) == 1 and len(hashes.pop()) == 64
        assert all(v["image_width"] == 64 and v["image_height"] == 64 for v in variants)
        # What the job left out came from the model: SD 3 and FLUX sample with Euler, SD 1.x with DPM++.
        assert {v["scheduler"] for v in variants} == {"dpmpp" if model == "default" else "euler"}


def test_the_catalog_is_listed_with_families_and_what_is_loaded(models_app):
    listed = requests.get(f"{models_app.url}/api/models", timeout=60).json()
    assert listed["default"] == "default"
    assert {m["name"]: m["family"] for m in listed["models"]} == FAMILIES
    assert {m["name"]: m["defaults"]["scheduler"] for m in listed["models"]}["flux"] == "euler"
    assert sum(m["loaded"] for m in listed["models"]) <= 1  # IMAGEGEN_MAX_LOADED_MODELS
    health = requests.get(f"{models_app.url}/api/health", timeout=60).json()
    assert {m["name"]: m["family"] for m in health["models"]} == FAMILIES
    assert set(health["models"][0]) == {"name", "family", "default", "loaded"}  # no folders on the anonymous route


def test_an_unknown_model_is_400_listing_the_names(models_app):
    response = models_app.post_job({**family_job("default", "x.png"), "model": "sd9"})
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert (error["path"], error["rule"]) == ("model", "unknown_model")
    assert "(`default`, `sdxl`, `sd3`, `flux`; GET /api/models), got 'sd9'" in error["message"]


def test_a_negative_prompt_and_a_unet_sampler_for_flux_are_400_naming_the_fields(models_app):
    job = {"name": "flux-negative", "model": "flux", "prompts": [{"text": "a bicycle", "negative": "blurry"}],
           "variants": {"sizes": ["64x64"], "steps": 2, "scheduler": "dpmpp"}}
    response = models_app.post_job(job)
    assert response.status_code == 400, response.text
    assert {(e["path"], e["rule"]) for e in response.json()["errors"]} == {
        ("prompts[0].negative", "negative_unsupported"), ("variants.scheduler", "scheduler_unsupported")}


@pytest.mark.timeout(300)
def test_sd3_warns_per_text_encoder_and_turns_deepcache_off_in_the_manifest(models_app):
    job = {"name": "sd3-long", "model": "sd3", "prompts": [{"text": "a red bicycle " * 100}],
           "variants": {"sizes": ["64x64"], "steps": 2}, "speedups": {"deepcache": 2}}
    job_id = models_app.submit(job)
    assert models_app.wait(job_id, timeout=240)["status"] == "completed"
    manifest = models_app.manifest(job_id)
    warnings = manifest["warnings"]
    assert warnings[0].startswith("`speedups.deepcache` 2 is off: DeepCache reuses a UNet's deep features")
    for encoder, limit in (("CLIP", 77), ("T5", 256)):  # each counted with its own tokenizer
        assert any(w.startswith("`prompts[0].text` is ") and f" {encoder} tokens; the {encoder} text encoder reads "
                   f"only the first {limit}: '..." in w for w in warnings), warnings
    assert manifest["variants"][0]["deepcache"] == 1


@pytest.mark.timeout(300)
def test_the_foundry_route_takes_a_catalog_model_and_gives_others_the_default(models_app, store):
    body = {"prompt": "a lighthouse at dusk", "size": "64x64", "steps": 2}
    flux = requests.post(f"{models_app.url}/api/images/generations", json={**body, "model": "flux"}, timeout=240)
    other = requests.post(f"{models_app.url}/api/images/generations", json={**body, "model": "dall-e-3"}, timeout=240)
    assert flux.status_code == other.status_code == 200, (flux.text, other.text)
    families = [models_app.manifest(answer.json()["jobId"])["variants"][0]["model_family"] for answer in (flux, other)]
    assert families == ["flux", "sd1"]
    refused = requests.post(f"{models_app.url}/api/images/generations",
                            json={**body, "model": "flux", "negative_prompt": "fog"}, timeout=60)
    assert refused.status_code == 400
    assert [e["path"] for e in refused.json()["errors"]] == ["negative_prompt"]
