"""Every published image carries valid C2PA Content Credentials, end to end through devhost.

The app runs with its default signer (`local`): the development CA it generates under the
app's `.devhost/c2pa/` is the trust anchor a verifier passes, as `imagegen verify --trust`
does. Images are read as a user reads them, from `GET /api/jobs/{id}/images/{variant}`.
"""

from __future__ import annotations

import base64
import hashlib
import io

import numpy as np
import pytest
import requests
from PIL import Image

from imagegen.checks import provenance
from imagegen.cli import main as cli
from imagegen.records.metadata import read_parameters
from tests.app.conftest import tiny_job
from tests.app.storage_invariants import storage_problems
from tests.devhost.conftest import REPO_ROOT

DEV_CA = REPO_ROOT / ".devhost" / "c2pa" / "dev-ca.pem"


def source_png() -> str:
    pixels = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image(app, job_id: str, variant_id: str) -> bytes:
    response = requests.get(f"{app.url}/api/jobs/{job_id}/images/{variant_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.content


@pytest.fixture(scope="module")
def signed_jobs(app):
    """One job per format, each with a txt2img and an img2img prompt: {format: (job_id, manifest)}."""
    jobs = {}
    for format in ("png", "jpeg", "webp"):
        job = tiny_job(f"signed-{format}", seeds=1)
        job["prompts"].append({"text": "the same bicycle, in the rain", "image": source_png(), "strength": 0.5})
        job["output"] = {"format": format}
        jobs[format] = app.submit(job)
    return {format: (job_id, app.wait(job_id), app.manifest(job_id)) for format, job_id in jobs.items()}


@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_every_published_image_verifies_as_ai_generated_for_its_job_and_variant(format, app, signed_jobs, store):
    job_id, done, manifest = signed_jobs[format]
    assert done["status"] == "completed", done
    assert len(manifest["variants"]) == 2
    for variant in manifest["variants"]:
        data = image(app, job_id, variant["id"])

        found = provenance.verify(data, format, DEV_CA.read_text())

        assert found.valid and found.trusted, found.failures
        assert found.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
        assert (found.job_id, found.variant_id) == (job_id, variant["id"])
        # What the manifest JSON records is what is in the file: its hash, its C2PA manifest, its signer.
        assert hashlib.sha256(data).hexdigest() == variant["sha256"]
        assert variant["content_credentials"]["manifest_label"] == found.manifest_label
        assert variant["content_credentials"]["signer"].startswith("CN=Durable Diffusion development signer")
        # The parameters the image carried before signing are still there.
        assert read_parameters(data)["seed"] == variant["seed"]
        if variant["source_image"]:
            assert found.ingredients == [variant["source_image"].rsplit("/", 1)[-1]]
        else:
            assert found.ingredients == []
    assert storage_problems(store, job_id, manifest) == []


def test_one_flipped_pixel_byte_makes_imagegen_verify_fail(app, signed_jobs, tmp_path, capsys):
    job_id, _, manifest = signed_jobs["png"]
    data = image(app, job_id, manifest["variants"][0]["id"])
    (tmp_path / "signed.png").write_bytes(data)
    at = data.index(b"IDAT") + 40  # inside the compressed pixels
    (tmp_path / "tampered.png").write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])

    assert cli.main(["verify", str(tmp_path / "signed.png"), "--trust", str(DEV_CA)]) == 0
    assert cli.main(["verify", str(tmp_path / "tampered.png"), "--trust", str(DEV_CA)]) == 1
    assert "hard binding INVALID" in capsys.readouterr().out


def test_an_image_that_cannot_be_signed_stays_in_quarantine_unchecked(app, store):
    # `unsigned-*` jobs: signing fails (IMAGEGEN_FAULTS fail-sign), as when Key Vault is down.
    job_id = app.submit(tiny_job("unsigned"))
    done = app.wait(job_id)

    assert done["status"] == "partial", done
    assert done["summary"]["unchecked"] == 2 and done["summary"]["ok"] == 0, done
    manifest = app.manifest(job_id)
    for variant in manifest["variants"]:
        assert variant["status"] == "unchecked" and variant["blob"].startswith("quarantine/")
        assert variant["content_credentials"] is None
        assert "C2PA signing failed" in variant["output_verdict"]["reasons"][0]
        assert requests.get(f"{app.url}/api/jobs/{job_id}/images/{variant['id']}", timeout=30).status_code == 404
    assert store.list("outputs", f"{job_id}/") == []
    assert storage_problems(store, job_id, manifest) == []
