"""`generate_images` against Azurite with the tiny model: where each image is written."""

from __future__ import annotations

import pytest

from imagegen import operations
from imagegen.diffusion import get_engine
from imagegen.messages import BatchRequest
from imagegen.spec import parse_job
from imagegen.variants import batches, expand
from imagegen.storage import BlobStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def app_env(monkeypatch, storage_connection_string):
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    monkeypatch.setenv("IMAGEGEN_MODEL", "tiny")
    monkeypatch.setenv("SAFETY_PROVIDER", "local")
    monkeypatch.setattr(get_engine(), "max_batch_size", lambda width, height: 1)  # one GPU call per image
    store = BlobStore.from_connection_string(storage_connection_string)
    store.ensure_containers()
    return store


def batch_request(name: str) -> BatchRequest:
    job = parse_job({"name": name, "prompts": [{"text": "a red bicycle"}],
                     "variants": {"seeds": 3, "sizes": ["64x64"], "steps": 2}})
    [batch] = batches(expand(job), 4)
    return BatchRequest(job_id=f"{name}-1", batch=batch)


def test_each_image_is_checked_then_written_once_to_outputs_when_safe(app_env):
    checked = operations.generate_images(batch_request("written")).images

    assert [c.verdict.status for c in checked] == ["safe"] * 3
    assert [c.ref for c in checked] == [c.image.publish_to for c in checked]
    assert sorted(app_env.list("outputs", "written-1/")) == sorted(c.ref for c in checked)
    assert app_env.list("quarantine", "written-1/") == []
    assert all(c.image.started_at <= c.image.finished_at for c in checked)


def test_a_try_that_fails_after_some_images_were_stored_leaves_none(app_env, monkeypatch):
    calls = []
    check_outputs = operations.check_outputs

    def storage_fails_on_the_second_call(job_id, images):
        calls.append(job_id)
        if len(calls) == 2:
            raise ConnectionError("storage went away")
        return check_outputs(job_id, images)

    monkeypatch.setattr(operations, "check_outputs", storage_fails_on_the_second_call)
    with pytest.raises(ConnectionError):
        operations.generate_images(batch_request("failing"))

    # The retry makes the same images again; a batch that fails for good has none stored.
    assert app_env.list("outputs", "failing-1/") == [] and app_env.list("quarantine", "failing-1/") == []
