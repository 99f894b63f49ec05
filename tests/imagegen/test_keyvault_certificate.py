"""A first deployment signs: with no certificate in the vault, the `keyvault` signer has Key
Vault create a self-signed EC P-256 one (real azure-keyvault clients, against the local
server that speaks Key Vault's create/pending contract, key_vault_server.py), and what it
signs verifies: valid signature, untrusted chain.

The C2PA SDK's own rules for such a certificate are checked here too, on certificates made
with `cryptography` with the profile Key Vault gives its self-signed certificates."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from imagegen.checks import keyvault_certificate, keyvault_signer, provenance
from tests.imagegen.key_vault_server import KeyVaultServer
from tests.imagegen.test_provenance import SOFTWARE, generation, noise_image

NAME = "c2pa-signer"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def signer_for(vault: KeyVaultServer, *, create: bool = True, name: str = NAME) -> keyvault_signer.KeyVaultSigner:
    return keyvault_signer.KeyVaultSigner(vault.url, name, vault.credential(), create_self_signed=create,
                                          **vault.client_options())


def test_a_missing_certificate_is_created_self_signed_and_images_are_signed_with_it():
    with KeyVaultServer() as vault:
        signer = signer_for(vault)

        signed = provenance.sign(noise_image("png"), "png", generation(), signer, SOFTWARE)

        leaf = vault.certificate(NAME)
        policy = vault.policy(NAME)
    assert leaf is not None and signer.created_self_signed and signer.certificate_origin == "self-signed"
    # What was asked of Key Vault: a non-exportable EC P-256 key, digitalSignature, emailProtection.
    assert policy["issuer"] == {"name": "Self"}
    assert policy["key_props"] == {"exportable": False, "kty": "EC", "reuse_key": False, "crv": "P-256"}
    assert policy["x509_props"]["key_usage"] == ["digitalSignature"]
    assert policy["x509_props"]["ekus"] == [keyvault_certificate.EMAIL_PROTECTION]
    assert policy["secret_props"] == {"contentType": "application/x-pem-file"}
    assert policy["lifetime_actions"] == [{"trigger": {"days_before_expiry": 30}, "action": {"action_type": "AutoRenew"}}]
    # Valid, untrusted: the signature and hard binding hold; no trust anchor knows the signer...
    found = provenance.verify(signed.data, "png")
    assert found.valid, found.failures
    assert signed.signer == leaf.subject.rfc4514_string()
    assert not provenance.verify(signed.data, "png", _other_ca_pem()).trusted
    # ...but whoever chooses to trust this very certificate can.
    assert provenance.verify(signed.data, "png", leaf.public_bytes(serialization.Encoding.PEM).decode()).trusted


def test_the_create_and_pending_calls_follow_the_service_contract():
    with KeyVaultServer(self_signed_polls=1) as vault:
        signer = signer_for(vault)
        assert signer.subject == "CN=Durable Diffusion C2PA signer,O=Durable Diffusion (self-signed - untrusted)"

        (create,) = vault.operations("create")
        pending = vault.operations("pending")
        certificates = vault.operations("certificates")
    assert create.method == "POST" and create.path == f"/certificates/{NAME}/create"
    assert "api-version=" in create.query and create.body["policy"]["issuer"]["name"] == "Self"
    assert len(pending) == 2  # one `inProgress`, then `completed`
    # Read before (404) and, once issued, by the SDK's poller.
    assert [(r.method, r.path) for r in certificates] == [("GET", f"/certificates/{NAME}/")] * 2


def test_an_existing_certificate_is_used_and_nothing_is_created(tmp_path):
    key = provenance.local_signing_key(tmp_path)
    with KeyVaultServer() as vault:
        vault.add_certificate(NAME, x509.load_pem_x509_certificates(key.chain_pem.encode()),
                              serialization.load_pem_private_key(key.key_pem.encode(), None))
        signer = signer_for(vault)

        provenance.sign(noise_image("png"), "png", generation(), signer, SOFTWARE)

        assert not vault.operations("create")
    assert signer.certificate_origin == "issued" and not signer.created_self_signed


def test_a_certificate_waiting_for_its_ca_is_not_replaced_by_a_self_signed_one(tmp_path):
    key = provenance.local_signing_key(tmp_path)
    with KeyVaultServer() as vault:
        vault.add_certificate(NAME, [], serialization.load_pem_private_key(key.key_pem.encode(), None))

        with pytest.raises(keyvault_signer.KeyVaultUnusable) as failed:
            provenance.sign(noise_image("png"), "png", generation(), signer_for(vault), SOFTWARE)

        assert not vault.operations("create")
    assert "no issued certificate yet" in failed.value.reason
    assert failed.value.problem.startswith("the signing certificate's request waits for its CA")


def test_with_creation_off_a_missing_certificate_is_a_failure_that_says_so():
    with KeyVaultServer() as vault:
        with pytest.raises(keyvault_signer.KeyVaultUnusable) as failed:
            provenance.sign(noise_image("png"), "png", generation(), signer_for(vault, create=False), SOFTWARE)

        assert not vault.operations("create")
    assert "C2PA_CREATE_CERTIFICATE is off" in failed.value.reason and "HTTP 404" in failed.value.reason
    assert "C2PA_CREATE_CERTIFICATE" in failed.value.problem


def test_an_identity_without_the_create_permission_gets_a_public_problem_and_a_detailed_reason():
    with KeyVaultServer() as vault:
        vault.fail(403, operation="create")

        with pytest.raises(keyvault_signer.KeyVaultUnusable) as failed:
            signer_for(vault).chain_pem  # noqa: B018 - loading is what fails

    assert "refused to create a self-signed certificate: HTTP 403" in failed.value.reason
    assert failed.value.problem == ("Key Vault refused the app's identity (HTTP 403) when it tried to create a "
                                    "self-signed signing certificate; the identity needs the C2PA signer role on the vault")
    assert "scripted" not in failed.value.problem  # nothing of Key Vault's own words


def test_a_creation_the_vault_fails_is_a_failure_with_its_error():
    with KeyVaultServer() as vault:
        vault.fail_creation(NAME, "PolicyViolation", "self-signed certificates are not allowed here")

        with pytest.raises(keyvault_signer.KeyVaultUnusable) as failed:
            signer_for(vault).chain_pem  # noqa: B018

    assert "status failed: PolicyViolation: self-signed certificates are not allowed here" in failed.value.reason


def test_a_create_already_in_progress_elsewhere_is_waited_for(monkeypatch):
    monkeypatch.setattr(keyvault_certificate, "POLL_SECONDS", 0.01)
    with KeyVaultServer(self_signed_polls=2) as vault:
        other_replica = signer_for(vault)._certificates
        other_replica.begin_create_certificate(NAME, keyvault_certificate.self_signed_policy())  # not waited for

        signer = signer_for(vault)
        origin = signer.certificate_origin

        assert len(vault.operations("create")) == 1  # it found the other's create pending and waited for it
    assert origin == "self-signed" and not signer.created_self_signed


def test_a_create_that_the_vault_refuses_as_already_in_progress_waits_for_that_one(monkeypatch):
    monkeypatch.setattr(keyvault_certificate, "POLL_SECONDS", 0.01)
    with KeyVaultServer(self_signed_polls=2) as vault:
        client = signer_for(vault)._certificates
        client.begin_create_certificate(NAME, keyvault_certificate.self_signed_policy())  # another replica's

        issued = keyvault_certificate.create_self_signed(client, NAME, "here")  # as if it had seen no certificate

        creates = vault.operations("create")
    assert len(creates) == 2 and issued.cer  # the second answered 409, then the first was followed


# -- what the C2PA SDK (c2pa-python 0.38.1) accepts in a self-signed signing certificate ------------

def _self_signed(ekus: list[x509.ObjectIdentifier], *, authority_key_id: bool = True) -> provenance.SigningKey:
    """A certificate with the extensions Key Vault's self-signed ones carry (see key_vault_server.py)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed")])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=10))
               .not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False)
               .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if authority_key_id:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                                        critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    return provenance.SigningKey(
        chain_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode(),
        subject=certificate.subject.rfc4514_string())


def test_c2pa_signs_with_a_self_signed_certificate_with_email_protection():
    signed = provenance.sign(noise_image("png"), "png", generation(), _self_signed([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                             SOFTWARE)
    found = provenance.verify(signed.data, "png")
    assert found.valid and not found.trusted


@pytest.mark.parametrize("ekus, authority_key_id, why", [
    ([DOCUMENT_SIGNING], True, "certificate missing required EKU"),
    ([ExtendedKeyUsageOID.EMAIL_PROTECTION], False, "the certificate is invalid"),
])
def test_c2pa_refuses_a_self_signed_certificate_without_what_it_requires(ekus, authority_key_id, why):
    with pytest.raises(provenance.SigningFailed) as failed:
        provenance.sign(noise_image("png"), "png", generation(), _self_signed(ekus, authority_key_id=authority_key_id),
                        SOFTWARE)
    assert why in failed.value.reason


def _other_ca_pem() -> str:
    return _self_signed([ExtendedKeyUsageOID.EMAIL_PROTECTION]).chain_pem
