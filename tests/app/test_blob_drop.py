"""Files dropped into the `prompts` container start jobs; bad files are moved aside with reasons."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
import yaml
from azure.storage.blob import BlobServiceClient

from devhost.blob_triggers import same_etag
from imagegen.core.blob_names import clean_name
from imagegen.storage.blobs import BlobStore
from tests.app.conftest import POISON_DROP, tiny_job
from tests.waiting import wait_until


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def dropped_job(app, filename: str) -> dict:
    job = app.wait_for_job(lambda j: j["source"] == "blob" and j["origin"] == f"prompts/{filename}")
    return app.wait(job["id"])


def test_a_dropped_json_job_runs(app, store):
    name = unique("drop-json") + ".json"
    store.put(f"prompts/{name}", json.dumps(tiny_job("dropped-json")).encode())
    done = dropped_job(app, name)
    assert done["status"] == "completed" and done["name"] == "dropped-json"
    assert done["summary"]["ok"] == 2


def test_a_dropped_yaml_job_with_an_image_beside_it_runs(app, store):
    import io

    from PIL import Image

    image_name = unique("source") + ".png"
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 120, 40)).save(buffer, "PNG")
    store.put(f"prompts/{image_name}", buffer.getvalue())  # an image alone starts nothing
    job = tiny_job("dropped-yaml")
    job["prompts"][0].update(image=image_name, strength=0.5)
    name = unique("drop-yaml") + ".yaml"
    store.put(f"prompts/{name}", yaml.safe_dump(job).encode())

    done = dropped_job(app, name)
    assert done["status"] == "completed", done.get("error") or done
    manifest = app.manifest(done["id"])
    assert {v["source_image"] for v in manifest["variants"]} == {f"prompts/{image_name}"}
    assert not [j for j in app.jobs() if j["origin"] == f"prompts/{image_name}"]


def test_a_dropped_txt_file_makes_one_variant_per_line(app, store):
    name = unique("drop-txt") + ".txt"
    store.put(f"prompts/{name}", b"# spring banners\na spring sale banner\na summer sale banner\n")
    done = dropped_job(app, name)
    assert done["status"] == "completed", done
    prompts = [v["prompt"] for v in app.manifest(done["id"])["variants"]]
    assert prompts == ["a spring sale banner", "a summer sale banner"]


def wait_moved_aside(store: BlobStore, name: str) -> None:
    """Wait until the trigger has moved `prompts/{name}` aside. It writes the report, then the
    copy, then deletes the original: wait for the last of these, so checks see the finished move."""
    wait_until(lambda: {"original": store.exists(f"prompts/{name}"), "copy": store.exists(f"prompts-rejected/{name}")},
               lambda seen: seen == {"original": False, "copy": True}, timeout=120, interval=0.25,
               what=f"prompts/{name} to be moved aside")


def test_a_malformed_dropped_file_is_moved_aside_with_its_errors(app, store):
    name = unique("bad") + ".yaml"
    content = yaml.safe_dump({"name": "bad", "prompts": [{"text": "x"}],
                              "variants": {"steps": 500, "sizes": ["500 by 512"]}}).encode()
    store.put(f"prompts/{name}", content)

    wait_moved_aside(store, name)
    report = json.loads(store.get(f"prompts-rejected/{name}.error.json"))
    paths = {error["path"] for error in report["errors"]}
    assert {"variants.steps", "variants.sizes[0]"} <= paths
    assert all(error["message"] for error in report["errors"])
    assert store.get(f"prompts-rejected/{name}") == content  # nothing lost
    assert not store.exists(f"prompts/{name}")


def receipt_etag(service: BlobServiceClient, name: str) -> str | None:
    """The ETag the host's blob receipt for `prompts/{name}` records: the version it ran for."""
    hosts = service.get_container_client("azure-webjobs-hosts")
    for blob in hosts.list_blobs(name_starts_with="blobreceipts/", include=["metadata"]):
        if blob.name.endswith(f"/drop_job/prompts/{name}"):
            return (blob.metadata or {}).get("etag")
    return None


def test_the_same_file_uploaded_again_unchanged_does_not_run_twice(app, store, storage_connection_string):
    name = unique("again") + ".json"
    content = json.dumps(tiny_job("uploaded-twice")).encode()
    store.put(f"prompts/{name}", content)
    first = dropped_job(app, name)
    store.put(f"prompts/{name}", content)  # a new ETag, the same file
    # Wait until the trigger has run for this very upload (its receipt holds the new ETag),
    # so the check below cannot pass just because the trigger had not looked yet.
    service = BlobServiceClient.from_connection_string(storage_connection_string)
    etag = service.get_blob_client("prompts", name).get_blob_properties().etag
    wait_until(lambda: receipt_etag(service, name), lambda receipt: same_etag(receipt or "", etag), timeout=30,
               interval=0.25, what=f"the blob trigger to run for the second upload (ETag {etag})")
    runs = [j for j in app.jobs() if j["origin"] == f"prompts/{name}"]
    assert [j["id"] for j in runs] == [first["id"]]

    store.put(f"prompts/{name}", json.dumps(tiny_job("uploaded-changed")).encode())
    changed = app.wait_for_job(lambda j: j["origin"] == f"prompts/{name}" and j["id"] != first["id"])
    assert app.wait(changed["id"])["name"] == "uploaded-changed"


@pytest.mark.parametrize("odd", ["{}//b.yaml", "tab\t{}.yaml"])
def test_a_file_with_an_odd_name_is_moved_aside_with_the_rule_it_breaks(app, store, storage_connection_string, odd):
    # Names the store refuses to address (empty segment, control character); the SDK uploads them.
    name = odd.format(unique("odd"))
    prompts = BlobServiceClient.from_connection_string(storage_connection_string).get_container_client("prompts")
    content = yaml.safe_dump(tiny_job("odd-name")).encode()
    prompts.upload_blob(name, content)

    aside = f"prompts-rejected/{quote(name, safe='')}"
    wait_until(lambda: store.exists(f"{aside}.error.json"), timeout=30, interval=0.25,
               what=f"the error report {aside}.error.json")
    report = json.loads(store.get(f"{aside}.error.json"))
    assert report["file"] == f"prompts/{name}"
    assert [error["path"] for error in report["errors"]] == ["name"]
    assert "path segments" in report["errors"][0]["message"] or "control characters" in report["errors"][0]["message"]
    assert store.get(aside) == content  # nothing lost
    assert name not in list(prompts.list_blob_names(name_starts_with=name.split("/")[0]))


def test_a_dropped_file_with_a_lone_surrogate_is_moved_aside_naming_the_field(app, store):
    name = unique("lone-surrogate") + ".json"
    content = b'{"name": "lone", "prompts": [{"text": "a bicycle", "negative": "\\ud83d"}]}'
    store.put(f"prompts/{name}", content)

    wait_moved_aside(store, name)
    report = json.loads(store.get(f"prompts-rejected/{name}.error.json"))
    assert [(e["path"], e["rule"]) for e in report["errors"]] == [("prompts[0].negative", "lone_surrogate")]
    assert store.get(f"prompts-rejected/{name}") == content
    assert not [j for j in app.jobs() if j["origin"] == f"prompts/{name}"]


def test_a_file_nested_600_deep_is_moved_aside_at_once_naming_the_limit(app, store):
    name = unique("deep") + ".json"
    content = b'{"name": "deep", "prompts": ' + b"[" * 600 + b"]" * 600 + b"}"
    store.put(f"prompts/{name}", content)

    wait_moved_aside(store, name)
    report = json.loads(store.get(f"prompts-rejected/{name}.error.json"))
    assert [(e["path"], e["rule"]) for e in report["errors"]] == [("", "max_depth")]
    assert "nests more than 32 levels deep (at line 1, column 60)" in report["errors"][0]["message"]
    assert store.get(f"prompts-rejected/{name}") == content


def test_a_file_that_fails_every_try_is_moved_aside_from_the_poison_queue_with_a_report(app, store):
    # Reading it for its job fails every time (IMAGEGEN_FAULTS: fail-drop): after the host's
    # fifth try its message on webjobs-blobtrigger-poison brings it to move_poisoned_drop.
    name = unique(POISON_DROP + "job") + ".yaml"
    content = yaml.safe_dump(tiny_job("poisoned")).encode()
    store.put(f"prompts/{name}", content)

    wait_moved_aside(store, name)
    report = json.loads(store.get(f"prompts-rejected/{name}.error.json"))
    assert report["file"] == f"prompts/{name}"
    ((path, rule, message),) = [(e["path"], e["rule"], e["message"]) for e in report["errors"]]
    assert (path, rule) == ("file", "poison")
    assert message.startswith(f"`drop_job` failed on `prompts/{name}` every time the host tried it (5 times)")
    assert "injected" not in message  # what failed inside stays in the log
    assert store.get(f"prompts-rejected/{name}") == content
    assert not [j for j in app.jobs() if j["origin"] == f"prompts/{name}"]


def test_a_bad_name_and_its_literal_encoding_are_moved_aside_apart(app, store, storage_connection_string):
    stem = unique("twin")
    bad, literal = f"{stem}//b.yaml", f"{stem}%2F%2Fb.yaml"  # the second is what the first encodes to
    prompts = BlobServiceClient.from_connection_string(storage_connection_string).get_container_client("prompts")
    prompts.upload_blob(bad, b"prompts: 3\n")
    prompts.upload_blob(literal, b"prompts: 4\n")

    asides = {name: f"prompts-rejected/{clean_name(name)}" for name in (bad, literal)}
    assert len(set(asides.values())) == 2
    wait_until(lambda: [store.exists(f"{aside}.error.json") for aside in asides.values()], all, timeout=30,
               interval=0.25, what="both error reports")
    for name, aside in asides.items():
        assert json.loads(store.get(f"{aside}.error.json"))["file"] == f"prompts/{name}"
    assert store.get(asides[bad]) == b"prompts: 3\n" and store.get(asides[literal]) == b"prompts: 4\n"
