"""Output checks through the `azure` provider (the real SDK against a local Content Safety).

Images the service calls unsafe land in quarantine/ and never in outputs/.
"""

from __future__ import annotations

import pytest

from tests.app.conftest import AppClient, launch_app, tiny_job
from tests.app.storage_invariants import storage_problems
from tests.imagegen.content_safety_server import ContentSafetyServer


@pytest.fixture(scope="module")
def content_safety():
    with ContentSafetyServer() as server:
        yield server


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory, storage_connection_string, content_safety, store):
    host = launch_app(tmp_path_factory, storage_connection_string, SAFETY_PROVIDER="azure",
                      CONTENT_SAFETY_ENDPOINT=content_safety.endpoint, CONTENT_SAFETY_KEY=content_safety.key)
    yield AppClient(host.url, store)
    host.stop()


def test_blocked_outputs_land_in_quarantine_never_in_outputs(strict_app, content_safety, store):
    content_safety.image_severity("Sexual", 6)
    job_id = strict_app.submit(tiny_job("quarantined"))
    done = strict_app.wait(job_id)

    assert done["summary"]["blocked"] == 2 and done["summary"]["ok"] == 0, done
    manifest = strict_app.manifest(job_id)
    assert all(v["status"] == "blocked" and v["blob"].startswith("quarantine/") for v in manifest["variants"])
    assert all(v["output_verdict"]["provider"] == "azure" for v in manifest["variants"])
    assert store.list("outputs", f"{job_id}/") == []
    assert len(store.list("quarantine", f"{job_id}/")) == 2
    assert storage_problems(store, job_id, manifest) == []
    image = strict_app.url + f"/api/jobs/{job_id}/images/{manifest['variants'][0]['id']}"
    import requests
    assert requests.get(image, timeout=30).status_code == 404  # never served


def test_a_prompt_the_service_blocks_rejects_the_job(strict_app, content_safety):
    content_safety.text_severity("dagger", "Violence", 6)
    job = tiny_job("violent")
    job["prompts"][0]["text"] = "a dagger dripping with blood"
    done = strict_app.wait(strict_app.submit(job))
    assert done["status"] == "rejected"
    assert any("Violence" in reason for reason in done["summary"]["reasons"])
