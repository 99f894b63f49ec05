"""LoRA adapters end to end (#21 item 3): `imagegen adapters put` uploads a tiny LoRA (made
with PEFT on the tiny model at test time) into the `adapters` container; a job naming it
runs through devhost and its manifest records the adapter's name, sha256 and weight; the
same job without it makes other images on the same seeds; bad adapters are 400s naming
`adapters[i].name`."""

from __future__ import annotations

import hashlib

import pytest

from tests.app.conftest import tiny_job
from tests.cli_command import cli_env, imagegen
from tests.imagegen.tiny_lora import save_sd_lora


@pytest.fixture(scope="module")
def adapter(tmp_path_factory, storage_connection_string):
    """The adapter `brand-e2e`, uploaded with the CLI; its sha256."""
    path = save_sd_lora(tmp_path_factory.mktemp("lora"), "Brand E2E", seed=5)
    env = cli_env(AzureWebJobsStorage=storage_connection_string)
    done = imagegen("adapters", "put", str(path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "brand-e2e"  # the file's name, made a usable name
    listed = imagegen("adapters", "list", env=env)
    assert "brand-e2e" in listed.stdout.split(), listed.stderr
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.timeout(300)
def test_a_job_with_an_adapter_completes_and_its_manifest_records_name_sha256_and_weight(app, adapter, store):
    branded = app.submit({**tiny_job("lora-e2e", seeds=[11]), "adapters": [{"name": "brand-e2e", "weight": 0.8}]})
    plain = app.submit(tiny_job("lora-e2e", seeds=[11]))
    manifests = {}
    for job_id in (branded, plain):
        assert app.wait(job_id, timeout=240)["status"] == "completed"
        manifests[job_id] = app.manifest(job_id)
    (variant,) = manifests[branded]["variants"]
    assert variant["adapters"] == [{"name": "brand-e2e", "sha256": adapter, "weight": 0.8}]
    (base,) = manifests[plain]["variants"]
    assert base["adapters"] == [] and base["seed"] == variant["seed"] == 11
    assert base["sha256"] != variant["sha256"]  # the adapter changed the image


def test_bad_adapters_are_400s_naming_each(app, adapter, store):
    store.put("adapters/not-lora.safetensors", b"GIF89a not a safetensors file")
    response = app.post_job({**tiny_job("lora-bad"), "adapters": [{"name": "nope"}, {"name": "not-lora"},
                                                                  {"name": "brand-e2e", "weight": 9}]})
    assert response.status_code == 400, response.text
    assert [(e["path"], e["rule"]) for e in response.json()["errors"]] == [("adapters[2].weight", "adapter_weight")]
    response = app.post_job({**tiny_job("lora-bad"), "adapters": [{"name": "nope"}, {"name": "not-lora"}]})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert [(e["path"], e["rule"]) for e in errors] == [("adapters[0].name", "adapter_unknown"),
                                                        ("adapters[1].name", "adapter_format")]
    assert "brand-e2e" in errors[0]["message"] and "'nope'" in errors[0]["message"]


def test_the_cli_refuses_a_file_that_is_no_lora_and_says_so_without_storage(tmp_path, storage_connection_string):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    done = imagegen("adapters", "put", str(junk), env=cli_env(AzureWebJobsStorage=storage_connection_string))
    assert done.returncode == 1 and "is not a safetensors file" in done.stderr and "nothing was uploaded" in done.stderr
    done = imagegen("adapters", "put", str(junk))
    assert done.returncode == 1 and "no storage to upload junk.safetensors into: set AzureWebJobsStorage" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
