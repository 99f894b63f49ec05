"""imagegen.storage.blobs against a real Azurite: the blob layout and the client."""

from __future__ import annotations

import threading

import pytest

from imagegen.core import blob_names
from imagegen.core.blob_names import (
    CONTAINERS,
    clean_name,
    input_ref,
    manifest_ref,
    output_ref,
    quarantine_ref,
    rejected_error_ref,
    rejected_ref,
    render_order_ref,
    render_outcome_ref,
    schedule_error_ref,
    split_ref,
)
from imagegen.core.settings import Settings
from imagegen.service.services import Services
from imagegen.storage import blobs as storage
from imagegen.storage.blobs import BlobChanged, BlobNotFound, BlobStore, ContainerNotFound

# -- layout (no storage needed) -------------------------------------------------------------


def test_layout_names():
    assert CONTAINERS == ("prompts", "prompts-rejected", "schedules", "inputs", "outputs",
                          "quarantine", "manifests", "published", "adapters", "renders")
    assert output_ref("job-1", "v003", "png") == "outputs/job-1/v003.png"
    assert quarantine_ref("job-1", "v003", "webp") == "quarantine/job-1/v003.webp"
    assert manifest_ref("job-1") == "manifests/job-1.json"
    assert render_order_ref("job-1", "b000", 2) == "renders/job-1/b000.2.order.json"
    assert render_outcome_ref("renders/job-1/b000.2.order.json") == "renders/job-1/b000.2.outcome.json"
    assert input_ref("shoes/sneaker.png") == "inputs/shoes/sneaker.png"
    assert rejected_ref("team/job.yaml") == "prompts-rejected/team/job.yaml"
    assert rejected_error_ref("team/job.yaml") == "prompts-rejected/team/job.yaml.error.json"
    assert schedule_error_ref("nightly.yaml") == "schedules/nightly.yaml.error.json"
    assert split_ref("outputs/job-1/v003.png") == ("outputs", "job-1/v003.png")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: output_ref("..", "v0", "png"), "`job_id` must be letters, digits"),
        (lambda: output_ref("a/b", "v0", "png"), "got 'a/b'"),
        (lambda: output_ref("", "v0", "png"), "`job_id` must be a non-empty string, got ''"),
        (lambda: output_ref("j" * 129, "v0", "png"), "`job_id` must be at most 128 characters, got 129"),
        (lambda: quarantine_ref("job-1", ".hidden", "png"), "`variant_id` must be letters"),
        (lambda: output_ref("job-1", "v0", ".png"), "`ext` must be 1 to 8 lowercase"),
        (lambda: manifest_ref("job 1"), "got 'job 1'"),
        (lambda: input_ref("../secrets.png"), "`name` must not have empty, `.` or `..` path segments"),
        (lambda: input_ref("a//b.png"), "got 'a//b.png'"),
        (lambda: input_ref("a\\b.png"), "must not contain backslashes"),
        (lambda: split_ref("output/job-1/v0.png"), "unknown container 'output'"),
        (lambda: split_ref("outputs"), "must look like `container/path`, got 'outputs'"),
        (lambda: split_ref("outputs/"), "non-empty blob path"),
    ],
)
def test_invalid_names_are_rejected_with_the_field_and_value(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)


def test_use_development_storage_is_understood_in_any_case():
    for value in ("UseDevelopmentStorage=true", "UseDevelopmentStorage=True;"):
        url = BlobStore.from_connection_string(value).url("outputs/job-1/v0.png")
        assert url == "http://127.0.0.1:10000/devstoreaccount1/outputs/job-1/v0.png"


def test_malformed_connection_string_is_named_but_not_echoed():
    with pytest.raises(ValueError) as error:
        BlobStore.from_connection_string("AccountKey=c2VjcmV0;nonsense")
    assert "(`AzureWebJobsStorage`) is not valid" in str(error.value)
    assert "c2VjcmV0" not in str(error.value)


def test_missing_storage_settings_name_both_settings():
    with pytest.raises(ValueError, match="AzureWebJobsStorage__blobServiceUri"):
        BlobStore.from_settings(Settings())


def test_blob_service_uri_setting_gives_an_identity_store():
    # DefaultAzureCredential asks for a token only on the first request: none is made here.
    store = BlobStore.from_settings(
        Settings(storage_blob_service_uri="https://acct.blob.core.windows.net")
    )
    assert store.url("manifests/job-1.json") == "https://acct.blob.core.windows.net/manifests/job-1.json"


# -- against Azurite -----------------------------------------------------------------------


def test_ensure_containers_is_idempotent(store, storage_connection_string):
    store.ensure_containers()  # second time: the fixture already made them
    from azure.storage.blob import BlobServiceClient

    names = {c.name for c in BlobServiceClient.from_connection_string(storage_connection_string).list_containers()}
    assert set(CONTAINERS) <= names


def test_put_get_round_trip_with_content_type(store, job_id, storage_connection_string):
    from azure.storage.blob import BlobServiceClient

    # What a downstream consumer sees: read the properties with the plain SDK.
    service = BlobServiceClient.from_connection_string(storage_connection_string)

    def properties(ref):
        return service.get_blob_client(*split_ref(ref)).get_blob_properties()

    ref = output_ref(job_id, "v000", "png")
    url = store.put(ref, b"\x89PNG fake", metadata={"seed": "42"})
    assert url == store.url(ref) and url.endswith(f"/outputs/{job_id}/v000.png")
    assert store.get(ref) == b"\x89PNG fake"
    assert store.exists(ref)
    assert properties(ref).content_settings.content_type == "image/png"
    assert properties(ref).metadata == {"seed": "42"}
    explicit = manifest_ref(job_id)
    store.put(explicit, b"{}", content_type="application/json; charset=utf-8")
    assert properties(explicit).content_settings.content_type == "application/json; charset=utf-8"


def test_retried_put_overwrites_instead_of_duplicating(store, job_id):
    ref = output_ref(job_id, "v001", "png")
    store.put(ref, b"first attempt")
    store.put(ref, b"second attempt")
    assert store.list("outputs", prefix=f"{job_id}/") == [ref]
    assert store.get(ref) == b"second attempt"


def test_list_by_prefix_returns_refs_in_name_order(store, job_id):
    for variant in ("v002", "v000", "v001"):
        store.put(output_ref(job_id, variant, "png"), variant.encode())
    store.put(output_ref(f"{job_id}x", "v000", "png"), b"another job")
    assert store.list("outputs", prefix=f"{job_id}/") == [
        output_ref(job_id, variant, "png") for variant in ("v000", "v001", "v002")
    ]
    assert store.list("quarantine", prefix=f"{job_id}/") == []
    with pytest.raises(ValueError, match="container must be one of"):
        store.list("nope")


def test_missing_blob_raises_blob_not_found_naming_the_ref(store, job_id):
    ref = manifest_ref(job_id)
    with pytest.raises(BlobNotFound) as error:
        store.get(ref)
    assert error.value.ref == ref
    assert str(error.value) == f"blob `{ref}` does not exist"
    assert not store.exists(ref)
    store.delete(ref)  # deleting what is not there is fine


def test_conditional_put_detects_a_concurrent_write(store, job_id):
    ref = f"schedules/{job_id}.yaml"
    store.put(ref, b"v1")
    data, etag = store.get_with_etag(ref)
    store.put(ref, b"v2 by someone else")
    with pytest.raises(BlobChanged, match=f"blob `{ref}` changed since it was read"):
        store.put(ref, data + b" edited", if_match=etag)
    _, fresh = store.get_with_etag(ref)
    store.put(ref, b"v3", if_match=fresh)
    assert store.get(ref) == b"v3"


def test_write_to_a_missing_container_says_how_to_fix_it(azurite):
    # A separate account view: a fresh container-less store is simulated by deleting one.
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    store = BlobStore(service)
    store.ensure_containers()
    service.delete_container("prompts-rejected")
    try:
        with pytest.raises(ContainerNotFound, match="container `prompts-rejected` does not exist"):
            store.put(rejected_ref("bad.yaml"), b"name: x")
    finally:
        store.ensure_containers()


def test_services_share_one_store_across_threads(storage_connection_string, job_id):
    services = Services(Settings(storage_connection_string=storage_connection_string))
    seen: list[BlobStore] = []

    def work(index: int) -> None:
        store = services.store
        seen.append(store)
        store.put(output_ref(job_id, f"v{index:03d}", "png"), bytes([index]))

    threads = [threading.Thread(target=work, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(store) for store in seen}) == 1
    refs = services.store.list("outputs", prefix=f"{job_id}/")
    assert refs == [output_ref(job_id, f"v{index:03d}", "png") for index in range(8)]
    # Other services get their own store (same Azurite here, spelled differently), and a new
    # store creates any missing container.
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(storage_connection_string)
    service.delete_container("prompts-rejected")
    other = Services(Settings(storage_connection_string=storage_connection_string.rstrip(";"))).store
    assert other is not seen[0]
    assert service.get_container_client("prompts-rejected").exists()


def test_a_dropped_name_the_store_refuses_gets_a_clean_reversible_name_to_be_moved_aside_by():
    assert clean_name("spring/banners.yaml") == "spring/banners.yaml"  # clean names stay as they are
    assert clean_name("a//b.yaml") == "a%2F%2Fb.yaml"
    assert clean_name("tab\tname.yaml") == "tab%09name.yaml"
    assert rejected_ref(clean_name("../x.yaml")) == "prompts-rejected/..%2Fx.yaml"


def test_copy_is_server_side_and_may_be_repeated(store, job_id):
    src = output_ref(job_id, "v000", "png")
    dst = blob_names.published_ref(job_id, "v000", "png")
    store.put(src, b"\x89PNG approved bytes")
    store.copy(src, dst)
    store.copy(src, dst)  # a retried publish overwrites with the same bytes
    assert store.get(dst) == b"\x89PNG approved bytes"
    assert store.get(src) == b"\x89PNG approved bytes"  # a copy: the original stays in outputs/
    assert dst == f"published/{job_id}/v000.png"
    with pytest.raises(storage.BlobNotFound):
        store.copy(output_ref(job_id, "v999", "png"), blob_names.published_ref(job_id, "v999", "png"))
