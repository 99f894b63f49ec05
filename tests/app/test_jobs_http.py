"""Jobs submitted over HTTP, followed to their manifests and images."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import requests
from PIL import Image

from imagegen.cli.main import job_body
from imagegen.records.metadata import read_parameters
from tests.app.conftest import BLOCKED_WORD, FOUNDRY_BROKEN_BODY, tiny_job
from tests.app.storage_invariants import storage_problems
from tests.waiting import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_txt2img_fan_out_of_8_variants_makes_8_images_and_a_manifest(app, store):
    job = {
        "name": "fan-out",
        "prompts": [{"text": "a running shoe on wet sand", "negative": "blurry"},
                    {"text": "a running shoe on a mossy rock"}],
        "variants": {"seeds": 2, "styles": ["", "watercolor illustration"], "sizes": ["64x64"], "steps": 2},
    }
    job_id = app.submit(job)
    done = app.wait(job_id)

    assert done["status"] == "completed", done
    assert done["summary"]["ok"] == 8 and done["progress"]["done"] == 8
    manifest = app.manifest(job_id)
    assert manifest["status"] == "completed" and manifest["totals"]["ok"] == 8
    assert len({v["id"] for v in manifest["variants"]}) == 8
    published = store.list("outputs", f"{job_id}/")
    assert sorted(published) == sorted(v["blob"] for v in manifest["variants"])
    assert store.list("quarantine", f"{job_id}/") == []  # nothing left held back
    for variant in manifest["variants"]:
        data = requests.get(f"{app.url}/api/jobs/{job_id}/images/{variant['id']}", timeout=30).content
        assert hashlib.sha256(data).hexdigest() == variant["sha256"]
        assert variant["output_verdict"]["status"] == "safe" and variant["input_verdict"]["status"] == "safe"
        assert read_parameters(data)["seed"] == variant["seed"]
        assert Image.open(io.BytesIO(data)).size == (64, 64)


def test_a_job_with_speedups_records_them_and_keeps_the_seeds_of_the_full_job(app):
    full = {"name": "speedups", "prompts": [{"text": "a red sneaker"}],
            "variants": {"seeds": 2, "sizes": ["64x64"], "steps": 4}}
    fast = {**full, "speedups": {"deepcache": 2, "tiny_vae": True}}
    full_id, fast_id = app.submit(full), app.submit(fast)
    assert app.wait(full_id)["status"] == app.wait(fast_id)["status"] == "completed"
    full_variants, fast_variants = app.manifest(full_id)["variants"], app.manifest(fast_id)["variants"]
    assert [v["seed"] for v in fast_variants] == [v["seed"] for v in full_variants]
    assert {(v["deepcache"], v["tiny_vae"]) for v in full_variants} == {(1, False)}
    assert {(v["deepcache"], v["tiny_vae"]) for v in fast_variants} == {(2, True)}
    assert {v["sha256"] for v in fast_variants}.isdisjoint(v["sha256"] for v in full_variants)
    image = requests.get(f"{app.url}/api/jobs/{fast_id}/images/{fast_variants[0]['id']}", timeout=30).content
    assert read_parameters(image)["deepcache"] == 2 and read_parameters(image)["tiny_vae"] is True


def test_img2img_job_with_an_inline_source_image(app, store):
    body, content_type, _ = job_body(EXAMPLES / "sneaker-restyle.yaml")
    response = requests.post(f"{app.url}/api/jobs", data=body, headers={"content-type": content_type}, timeout=60)
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    assert response.headers["Location"].endswith(f"/api/jobs/{job_id}")

    done = app.wait(job_id)
    assert done["status"] == "completed", done
    manifest = app.manifest(job_id)
    sources = {v["source_image"] for v in manifest["variants"]}
    assert len(sources) == 1 and sources.pop().startswith("inputs/")
    assert all(v["strength"] == 0.6 and v["blob"].endswith(".webp") for v in manifest["variants"])
    assert len(store.list("outputs", f"{job_id}/")) == 2


def test_a_blocked_prompt_rejects_the_job_and_generates_nothing(app, store):
    job = tiny_job("blocked-prompt")
    job["prompts"][0]["text"] = f"a poster with {BLOCKED_WORD} on it"
    job_id = app.submit(job)
    done = app.wait(job_id)

    assert done["status"] == "rejected", done
    assert any(BLOCKED_WORD in reason for reason in done["summary"]["reasons"])
    manifest = app.manifest(job_id)
    assert manifest["status"] == "rejected"
    assert all(v["status"] == "blocked" and v["blob"] is None for v in manifest["variants"])
    assert store.list("outputs", f"{job_id}/") == [] and store.list("quarantine", f"{job_id}/") == []


def test_a_batch_that_fails_once_is_retried_and_the_job_completes(app, store):
    job_id = app.submit(tiny_job("flaky"))
    done = app.wait(job_id)
    assert done["status"] == "completed", done
    assert done["summary"]["ok"] == 2 and done["summary"]["failed"] == 0
    assert storage_problems(store, job_id, app.manifest(job_id)) == []


def test_a_batch_that_always_fails_ends_the_job_partial_not_failed(app, store):
    job = tiny_job("broken", sizes=["64x64", "128x64"])  # two batches, both broken
    job_id = app.submit(job)
    done = app.wait(job_id)

    assert done["status"] == "partial", done
    assert done["runtimeStatus"] == "Completed"
    manifest = app.manifest(job_id)
    assert manifest["totals"]["failed"] == 4
    assert all("injected fault" in v["error"] for v in manifest["variants"])
    assert storage_problems(store, job_id, manifest) == []


def test_cancel_stops_the_work_and_the_manifest_accounts_for_every_variant(app, store):
    job = tiny_job("long-running", seeds=64, sizes=["128x128"], steps=40)  # 16 GPU batches
    job_id = app.submit(job)
    wait_until(lambda: app.job(job_id), lambda job: (job.get("progress") or {}).get("phase") == "generating",
               timeout=60, what=f"job {job_id} to start generating")
    response = requests.post(f"{app.url}/api/jobs/{job_id}/cancel", timeout=30)
    assert response.status_code == 202, response.text
    made_before = len(store.list("quarantine", f"{job_id}/")) + len(store.list("outputs", f"{job_id}/"))

    done = app.wait(job_id)
    assert done["status"] == "cancelled", done
    manifest = app.manifest(job_id)  # a cancelled job has its manifest too
    totals = manifest["totals"]
    assert manifest["status"] == "cancelled" and totals["variants"] == 64
    assert totals["ok"] + totals["blocked"] + totals["unchecked"] + totals["failed"] + totals["cancelled"] == 64
    # The work stopped: at most the batches in hand when the cancel came (4 images each,
    # a few in flight on 2 cores) were finished after it; the rest were never made.
    assert totals["images"] <= made_before + 12 and totals["cancelled"] >= 64 - made_before - 12, totals
    assert all(v["blob"] is None for v in manifest["variants"] if v["status"] == "cancelled")
    # Nothing unaccounted for in storage.
    assert storage_problems(store, job_id, manifest) == []
    again = requests.post(f"{app.url}/api/jobs/{job_id}/cancel", timeout=30)
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


def test_foundry_images_generations_answers_with_the_image(app, store):
    response = requests.post(f"{app.url}/api/images/generations", params={"timeout": 120}, timeout=150,
                             json={"prompt": "a lighthouse at dusk", "size": "64x64", "seed": 1234,
                                   "output_format": "jpeg", "steps": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 1 and body["data"][0]["seed"] == 1234
    image = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert image.format == "JPEG" and image.size == (64, 64)
    assert storage_problems(store, body["jobId"], app.manifest(body["jobId"])) == []


def test_foundry_route_answers_202_with_status_urls_when_not_done_in_time(app):
    response = requests.post(f"{app.url}/api/images/generations", params={"timeout": 0}, timeout=60,
                             json={"prompt": "a lighthouse at dawn", "size": "64x64", "steps": 2})
    assert response.status_code == 202, response.text
    job_id = response.json()["jobId"]
    assert response.headers["Location"].endswith(f"/api/jobs/{job_id}")
    assert app.wait(job_id)["status"] == "completed"


def test_list_jobs_shows_recent_jobs_with_name_source_status_and_time(app):
    job_id = app.submit(tiny_job("listed"))
    app.wait(job_id)
    newer_id = app.submit(tiny_job("listed-later"))
    listed = {job["id"]: job for job in app.jobs()}
    assert listed[job_id]["name"] == "listed" and listed[job_id]["source"] == "http"
    assert listed[job_id]["status"] == "completed" and listed[job_id]["createdTime"]
    first = requests.get(f"{app.url}/api/jobs", params={"top": 1}, timeout=30).json()
    assert [job["id"] for job in first["jobs"]] == [newer_id] and first["continuationToken"]
    second = requests.get(f"{app.url}/api/jobs", params={"top": 1, "continuationToken": first["continuationToken"]},
                          timeout=30).json()
    assert [job["id"] for job in second["jobs"]] == [job_id]  # tests/app/test_job_listing.py pages through 300
    app.wait(newer_id)


def test_health_says_what_runs_without_a_key(app):
    health = requests.get(f"{app.url}/api/health", timeout=30).json()
    assert health["device"] == "cpu" and health["model"] == "tiny" and health["safety_provider"] == "local"
    assert health["c2pa_signer"] == "local"
    assert "loaded" in health
    # The signer was checked as the worker started: it can sign, with the development CA.
    assert health["status"] == "ok" and health["problems"] == [] and health["c2pa_certificate"] == "development"
    live = requests.get(f"{app.url}/api/health/live", timeout=30)
    assert live.status_code == 200 and live.json() == {"status": "ok"}


def test_foundry_generation_failing_on_every_try_is_a_5xx_not_a_content_filter(app, store):
    response = requests.post(f"{app.url}/api/images/generations", params={"timeout": 120}, timeout=150,
                             json=FOUNDRY_BROKEN_BODY)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    job_id = response.json()["jobId"]
    assert storage_problems(store, job_id, app.manifest(job_id)) == []
    assert response.json().get("code") != "content_filter" and "blocked" not in response.text.lower()


def test_foundry_blocked_prompt_is_a_400_content_filter(app, store):
    response = requests.post(f"{app.url}/api/images/generations", params={"timeout": 120}, timeout=150,
                             json={"prompt": f"a {BLOCKED_WORD} lighthouse", "size": "64x64", "steps": 2})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "content_filter"
    job_id = response.json()["jobId"]
    assert storage_problems(store, job_id, app.manifest(job_id)) == []


def test_a_prompt_longer_than_the_text_encoder_reads_is_reported_in_the_manifest(app):
    # CLIP reads 77 tokens; the rest of a prompt is silently cut off unless we say so.
    job = tiny_job("long-prompt", seeds=1)
    job["prompts"][0]["text"] = "a photo of a red sneaker, " * 12 + "in the studio light"
    job_id = app.submit(job)
    assert app.wait(job_id)["status"] == "completed"
    (warning,) = app.manifest(job_id)["warnings"]
    assert warning.startswith("`prompts[0].text` is 90 tokens; the model reads only the first 77")
    assert warning.endswith("in the studio light' is ignored")
    # A prompt that fits has no warning.
    short_id = app.submit(tiny_job("short-prompt", seeds=1))
    app.wait(short_id)
    assert app.manifest(short_id)["warnings"] == []
