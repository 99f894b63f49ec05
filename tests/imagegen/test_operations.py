"""The activities' work (`imagegen.service.operations`) against Azurite, the tiny model and the local
safety checks: one request model in, one result model out, and where each image is written."""

from __future__ import annotations

import dataclasses
import os
import uuid
from concurrent.futures.process import BrokenProcessPool

import pytest

from imagegen.core.settings import Settings
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import batches, expand
from imagegen.records.messages import BatchRequest, ModerateImageRequest, ModerateTextRequest
from imagegen.service import operations, output_checks
from imagegen.service.faults import FaultyServices
from imagegen.service.services import Services
from imagegen.storage.blobs import BlobStore
from tests.imagegen.conftest import png

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def make_services(storage_connection_string):
    """Services over Azurite, the tiny model and the local checks; each engine call makes one image."""
    made = []

    def make(services_class=Services, **settings) -> Services:
        services = services_class(Settings(storage_connection_string=storage_connection_string, model="tiny",
                                           safety_provider="local", **settings))
        services.engine().max_batch_size = lambda width, height: 1  # one GPU call per image
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


@pytest.fixture
def app_env(make_services):
    return make_services()


def batch_request(name: str) -> BatchRequest:
    job = parse_job({"name": name, "prompts": [{"text": "a red bicycle"}],
                     "variants": {"seeds": 3, "sizes": ["64x64"], "steps": 2}})
    [batch] = batches(expand(job), 4)
    return BatchRequest(job_id=f"{name}-1", batch=batch)


def test_each_image_is_checked_then_written_once_to_outputs_when_safe(app_env):
    checked = operations.generate_images(batch_request("written"), app_env).images

    assert [c.verdict.status for c in checked] == ["safe"] * 3
    assert [c.ref for c in checked] == [c.image.publish_to for c in checked]
    assert sorted(app_env.store.list("outputs", "written-1/")) == sorted(c.ref for c in checked)
    assert app_env.store.list("quarantine", "written-1/") == []
    assert all(c.image.started_at <= c.image.finished_at for c in checked)


def test_a_try_that_fails_after_some_images_were_stored_leaves_none(make_services, monkeypatch):
    # On a thread of this process (IMAGEGEN_CHECK_PROCESSES=0), where the test can break
    # the check; a checker process that dies is the next test.
    services = make_services(check_processes=0)
    calls = []
    check_outputs = output_checks.check_outputs

    def storage_fails_on_the_second_call(job_id, images, services):
        calls.append(job_id)
        if len(calls) == 2:
            raise ConnectionError("storage went away")
        return check_outputs(job_id, images, services)

    monkeypatch.setattr(output_checks, "check_outputs", storage_fails_on_the_second_call)
    with pytest.raises(ConnectionError):
        operations.generate_images(batch_request("failing"), services)

    # The retry makes the same images again; a batch that fails for good has none stored.
    store = services.store
    assert store.list("outputs", "failing-1/") == [] and store.list("quarantine", "failing-1/") == []


def test_with_several_checker_processes_fail_check_once_still_fails_one_check_of_the_job(make_services):
    services = make_services(FaultyServices, check_processes=2, faults={"halfchecked-*": "fail-check-once"})
    checked = operations.generate_images(batch_request("halfchecked"), services).images  # 3 GPU calls, 2 checkers

    assert [c.verdict.status for c in checked] == ["unchecked", "safe", "safe"]
    assert "injected fault" in checked[0].verdict.reasons[0] and checked[0].ref == checked[0].image.held
    assert services.store.list("outputs", "halfchecked-1/") == sorted(c.ref for c in checked[1:])
    assert services.store.list("quarantine", "halfchecked-1/") == [checked[0].ref]


class ExitsWhenUnpickled:
    """Ends the process that unpickles it at once, as an out-of-memory kill would."""

    def __reduce__(self):
        return os._exit, (3,)


def test_a_checker_process_that_dies_fails_the_try_leaves_nothing_and_the_next_try_works(make_services, monkeypatch):
    services = make_services(check_processes=1)
    store, checker = services.store, services.checker
    submitted = []
    submit = checker.submit

    def second_call_kills_the_checker(call):
        submitted.append(call)
        if len(submitted) == 2:
            call = dataclasses.replace(call, ingredient=ExitsWhenUnpickled())
        return submit(call)

    monkeypatch.setattr(checker, "submit", second_call_kills_the_checker)
    with pytest.raises(BrokenProcessPool):
        operations.generate_images(batch_request("checker-died"), services)
    assert store.list("outputs", "checker-died-1/") == [] and store.list("quarantine", "checker-died-1/") == []

    monkeypatch.setattr(checker, "submit", submit)
    checked = operations.generate_images(batch_request("checker-died"), services).images  # the activity's retry
    assert [c.verdict.status for c in checked] == ["safe"] * 3
    assert sorted(store.list("outputs", "checker-died-1/")) == sorted(c.ref for c in checked)


@pytest.fixture
def services(make_services) -> Services:
    return make_services()


@pytest.fixture
def store(services) -> BlobStore:
    return services.store


@pytest.fixture
def job_id() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"


def test_moderate_text_answers_one_verdict_per_text_in_order(services, job_id):
    result = operations.moderate_text(ModerateTextRequest(job_id=job_id, texts=["a red bicycle", "a blue car"]), services)
    assert [verdict.status for verdict in result.verdicts] == ["safe", "safe"]


def test_a_source_image_is_only_checked_never_moved(services, store, job_id):
    source = f"inputs/{job_id}.png"
    store.put(source, png(64, 64))
    result = operations.moderate_image(ModerateImageRequest(job_id=job_id, image=source), services)
    assert (result.verdict.status, result.image) == ("safe", source)
    assert store.exists(source)


def test_a_missing_source_image_is_unchecked(services, job_id):
    source = f"inputs/{job_id}-gone.png"
    result = operations.moderate_image(ModerateImageRequest(job_id=job_id, image=source), services)
    assert (result.verdict.status, result.image) == ("unchecked", source)
    assert result.verdict.reasons == [f"image {source} was not found"]
