"""C2PA Content Credentials: what we sign is what a C2PA reader finds, and tampering shows."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from imagegen.checks import provenance
from imagegen.cli import main as cli
from imagegen.core.settings import Settings

SOFTWARE = "durable-diffusion test"


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("c2pa")


@pytest.fixture(scope="module")
def key(state):
    return provenance.local_signing_key(state)


def noise_image(format: str, side: int = 64, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=format.upper(), **({"quality": 95} if format == "jpeg" else {}))
    return buffer.getvalue()


def generation(**overrides) -> provenance.Generation:
    return provenance.Generation(**{"job_id": "job-1", "variant_id": "v003", "model": "tiny", "seed": 42,
                                    "steps": 4, "guidance": 7.5, "width": 64, "height": 64,
                                    "scheduler": "euler"} | overrides)


@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_a_signed_image_verifies_against_the_development_ca(format, key, state):
    signed = provenance.sign(noise_image(format), format, generation(), key, SOFTWARE)

    found = provenance.verify(signed.data, format, provenance.local_ca_path(state).read_text())

    assert found.valid and found.trusted, found.failures
    assert found.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
    assert (found.job_id, found.variant_id) == ("job-1", "v003")
    assert found.signer == "Durable Diffusion development signer"
    assert signed.manifest_label.startswith("urn:c2pa:") and found.manifest_label == signed.manifest_label
    assert Image.open(io.BytesIO(signed.data)).size == (64, 64)  # still an image every viewer opens


@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_one_changed_pixel_byte_fails_verification(format, key, state):
    original = noise_image(format)
    signed = provenance.sign(original, format, generation(), key, SOFTWARE).data
    # A byte from the middle of the original encoding is image data, wherever the manifest went.
    middle = original[len(original) // 2: len(original) // 2 + 32]
    at = signed.index(middle) + 16
    tampered = signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1:]

    found = provenance.verify(tampered, format, provenance.local_ca_path(state).read_text())

    assert found.has_credentials and not found.valid
    assert found.failures


def test_another_ca_does_not_make_the_image_trusted(key, tmp_path):
    signed = provenance.sign(noise_image("png"), "png", generation(), key, SOFTWARE).data
    provenance.local_signing_key(tmp_path)  # a second, unrelated development CA

    found = provenance.verify(signed, "png", provenance.local_ca_path(tmp_path).read_text())

    assert not found.trusted


def test_img2img_names_its_source_as_the_parent_ingredient(key, state):
    source = provenance.Source(data=noise_image("jpeg", seed=1), format="jpeg", title="cat.jpg")
    signed = provenance.sign(noise_image("png"), "png", generation(), key, SOFTWARE, source=source)

    found = provenance.verify(signed.data, "png", provenance.local_ca_path(state).read_text())

    assert found.valid and found.ingredients == ["cat.jpg"]


def test_the_prompt_is_recorded_only_when_given(key):
    without = provenance.manifest_definition(generation(), SOFTWARE, None)
    with_prompt = provenance.manifest_definition(generation(prompt="a red fox"), SOFTWARE, None)

    assert "a red fox" not in json.dumps(without)
    assert "a red fox" in json.dumps(with_prompt)


def test_an_unsigned_image_has_no_credentials():
    found = provenance.verify(noise_image("png"), "png")

    assert not found.has_credentials and not found.valid


def test_imagegen_verify_exits_non_zero_when_any_file_is_unsigned_or_tampered(key, state, tmp_path, capsys):
    signed = provenance.sign(noise_image("png"), "png", generation(), key, SOFTWARE).data
    (tmp_path / "good.png").write_bytes(signed)
    (tmp_path / "plain.png").write_bytes(noise_image("png"))
    trust = str(provenance.local_ca_path(state))

    assert cli.main(["verify", str(tmp_path / "good.png"), "--trust", trust]) == 0
    out = capsys.readouterr().out
    assert "AI-generated (IPTC trainedAlgorithmicMedia); job job-1, variant v003" in out
    assert cli.main(["verify", str(tmp_path / "good.png"), str(tmp_path / "plain.png"), "--trust", trust, "--json"]) == 1
    results = json.loads(capsys.readouterr().out)
    assert results[str(tmp_path / "good.png")]["valid"] and not results[str(tmp_path / "plain.png")]["has_credentials"]


# The C2PA_* settings.

@pytest.mark.parametrize("env, message", [
    ({"C2PA_SIGNER": "hsm"}, "setting `C2PA_SIGNER` must be one of local, keyvault, off, got 'hsm'"),
    ({"C2PA_SIGNER": "keyvault"}, "setting `C2PA_KEYVAULT_URL` must be an https:// Key Vault URL when "
                                  "`C2PA_SIGNER` is `keyvault`, got ''"),
    ({"C2PA_SIGNER": "keyvault", "C2PA_KEYVAULT_URL": "http://kv.example"}, "got 'http://kv.example'"),
    ({"C2PA_SIGNER": "keyvault", "C2PA_KEYVAULT_URL": "https://kv.vault.azure.net/"},
     "setting `C2PA_CERT_NAME` must name the Key Vault certificate"),
    ({"C2PA_TSA_URL": "timestamp.example"}, "setting `C2PA_TSA_URL` must be an http:// or https:// URL, "
                                            "got 'timestamp.example'"),
    ({"C2PA_INCLUDE_PROMPT": "yes"}, "setting `C2PA_INCLUDE_PROMPT` must be `true` or `false`, got 'yes'"),
    ({"C2PA_CREATE_CERTIFICATE": "ca"}, "setting `C2PA_CREATE_CERTIFICATE` must be `self-signed` or `off`, got 'ca'"),
])
def test_a_bad_c2pa_setting_is_named_with_its_rule_and_value(env, message, monkeypatch):
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(ValueError) as error:
        Settings.from_env()

    assert message in str(error.value)


def test_c2pa_settings_are_read(monkeypatch):
    monkeypatch.setenv("C2PA_SIGNER", "keyvault")
    monkeypatch.setenv("C2PA_KEYVAULT_URL", "https://kv.vault.azure.net/")
    monkeypatch.setenv("C2PA_CERT_NAME", "c2pa-signer")
    monkeypatch.setenv("C2PA_TSA_URL", "http://timestamp.example")
    monkeypatch.setenv("C2PA_INCLUDE_PROMPT", "TRUE")

    settings = Settings.from_env()

    assert (settings.c2pa_signer, settings.c2pa_keyvault_url, settings.c2pa_cert_name, settings.c2pa_tsa_url,
            settings.c2pa_include_prompt) == ("keyvault", "https://kv.vault.azure.net/", "c2pa-signer",
                                             "http://timestamp.example", True)
    signer = provenance.signer_from_settings(settings)
    assert signer.certificate_name == "c2pa-signer"
    assert signer.create_self_signed, "by default a missing certificate is created self-signed"
    monkeypatch.setenv("C2PA_CREATE_CERTIFICATE", "off")
    assert not provenance.signer_from_settings(Settings.from_env()).create_self_signed


def test_by_default_images_are_signed_locally_without_the_prompt(monkeypatch, tmp_path):
    for name in ("C2PA_SIGNER", "C2PA_INCLUDE_PROMPT", "C2PA_TSA_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    settings = Settings.from_env()

    assert (settings.c2pa_signer, settings.c2pa_include_prompt, settings.c2pa_tsa_url) == ("local", False, None)
    assert provenance.signer_from_settings(settings).subject.startswith("CN=Durable Diffusion development signer")
    assert provenance.local_ca_path().exists()


def test_signing_off_gives_no_signer(monkeypatch):
    monkeypatch.setenv("C2PA_SIGNER", "off")

    assert provenance.signer_from_settings(Settings.from_env()) is None


def test_processes_creating_the_development_key_at_once_all_get_the_same_matching_set(tmp_path):
    import concurrent.futures

    folder = tmp_path / "c2pa"
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        keys = list(pool.map(provenance.local_signing_key, [folder] * 8))

    assert len({(k.chain_pem, k.key_pem) for k in keys}) == 1
    signed = provenance.sign(noise_image("png"), "png", generation(), keys[0], SOFTWARE).data
    assert provenance.verify(signed, "png", provenance.local_ca_path(folder).read_text()).trusted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c2pa"]  # no staging folder left behind
