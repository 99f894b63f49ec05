"""The `keyvault` C2PA signer through the real azure-keyvault clients, against a local
server that speaks Key Vault's REST contract (key_vault_server.py): the private key stays
in the vault, and what it signs verifies with the CA that issued the certificate."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from imagegen.checks import keyvault_signer, provenance
from tests.imagegen.key_vault_server import KeyVaultServer
from tests.imagegen.test_provenance import SOFTWARE, generation, noise_image

NAME = "c2pa-signer"


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    """A CA and a signing certificate it issued: the certificate a user brings into Key Vault."""
    folder = tmp_path_factory.mktemp("kv-ca")
    key = provenance.local_signing_key(folder)
    chain = x509.load_pem_x509_certificates(key.chain_pem.encode())
    private_key = serialization.load_pem_private_key(key.key_pem.encode(), None)
    return chain, private_key, provenance.local_ca_path(folder).read_text()


@pytest.fixture
def vault(issued):
    chain, private_key, _ = issued
    with KeyVaultServer() as server:
        server.add_certificate(NAME, chain, private_key)
        yield server


def signer_for(vault: KeyVaultServer, **overrides) -> keyvault_signer.KeyVaultSigner:
    options = vault.client_options() | overrides
    credential = options.pop("credential", None) or vault.credential()
    return keyvault_signer.KeyVaultSigner(vault.url, NAME, credential, **options)


@pytest.mark.parametrize("content_type", ["application/x-pem-file", "application/x-pkcs12"])
@pytest.mark.parametrize("format", ["png", "jpeg", "webp"])
def test_an_image_signed_in_key_vault_verifies_against_the_issuing_ca(format, content_type, issued):
    chain, private_key, ca = issued
    with KeyVaultServer() as vault:
        vault.add_certificate(NAME, chain, private_key, content_type=content_type)
        credential = vault.credential()
        signer = signer_for(vault, credential=credential)

        signed = provenance.sign(noise_image(format), format, generation(), signer, SOFTWARE)

    found = provenance.verify(signed.data, format, ca)
    assert found.valid and found.trusted, found.failures
    assert found.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
    assert signed.signer == chain[0].subject.rfc4514_string()
    # Only a digest went to the vault, with the token for the vault's resource.
    signs = vault.operations("sign")
    assert signs and all(r.body["alg"] == "ES256" and len(r.body["value"]) == 43 for r in signs)
    assert ("https://vault.azure.net/.default",) in credential.scopes


def test_the_certificate_is_read_once_and_each_image_is_one_sign_call(vault):
    signer = signer_for(vault)

    for seed in range(3):
        provenance.sign(noise_image("png", seed=seed), "png", generation(), signer, SOFTWARE)

    assert len(vault.operations("certificates")) == 1
    assert len(vault.operations("secrets")) == 1
    assert len(vault.operations("sign")) == 3


def test_a_renewed_certificate_is_used_once_the_cached_one_is_stale(vault, issued, tmp_path, monkeypatch):
    signer = signer_for(vault)
    provenance.sign(noise_image("png"), "png", generation(), signer, SOFTWARE)
    renewed = provenance.local_signing_key(tmp_path)  # a new certificate from another CA
    vault.add_certificate(NAME, x509.load_pem_x509_certificates(renewed.chain_pem.encode()),
                          serialization.load_pem_private_key(renewed.key_pem.encode(), None))
    monkeypatch.setattr(keyvault_signer, "CERTIFICATE_TTL_SECONDS", 0.0)

    signed = provenance.sign(noise_image("png"), "png", generation(), signer, SOFTWARE)

    assert provenance.verify(signed.data, "png", provenance.local_ca_path(tmp_path).read_text()).trusted
    assert not provenance.verify(signed.data, "png", issued[2]).trusted


def test_a_failing_sign_operation_is_a_signing_failure_with_the_reason(vault):
    vault.fail(503, operation="sign")

    with pytest.raises(provenance.SigningFailed) as failed:
        provenance.sign(noise_image("png"), "png", generation(), signer_for(vault), SOFTWARE)

    assert "Key Vault sign failed: HTTP 503" in failed.value.reason


def test_a_missing_certificate_is_a_signing_failure_naming_it(vault):
    signer = keyvault_signer.KeyVaultSigner(vault.url, "no-such-cert", vault.credential(), **vault.client_options())

    with pytest.raises(provenance.SigningFailed) as failed:
        provenance.sign(noise_image("png"), "png", generation(), signer, SOFTWARE)

    assert "'no-such-cert'" in failed.value.reason and "HTTP 404" in failed.value.reason


def test_a_token_the_vault_refuses_is_a_signing_failure(vault):
    refused = vault.credential()
    refused.token = "not-the-vault's-token"

    with pytest.raises(provenance.SigningFailed) as failed:
        provenance.sign(noise_image("png"), "png", generation(), signer_for(vault, credential=refused), SOFTWARE)

    assert "HTTP 401" in failed.value.reason
    assert not vault.operations("sign")


def test_a_certificate_still_waiting_for_its_ca_is_a_signing_failure_that_says_so(vault, issued):
    vault.add_certificate(NAME, [], issued[1])  # `az keyvault certificate create` done, merge not yet

    with pytest.raises(provenance.SigningFailed) as failed:
        provenance.sign(noise_image("png"), "png", generation(), signer_for(vault), SOFTWARE)

    assert "has no issued certificate yet" in failed.value.reason
    assert not vault.operations("sign")
