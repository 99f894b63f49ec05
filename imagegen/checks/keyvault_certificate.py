"""The first C2PA signing certificate: a self-signed one that Key Vault makes when none exists.

A first `azd up` has a vault but no certificate in it, and an app that cannot sign holds
every image back. So when `C2PA_CREATE_CERTIFICATE` is `self-signed` (the default) and the
certificate `C2PA_CERT_NAME` does not exist, the `keyvault` signer asks Key Vault to create
one with its managed identity (`begin_create_certificate`, issuer `Self`):

- an EC P-256 key, **non-exportable**, made inside Key Vault: the private key exists nowhere
  else, exactly as with a certificate a CA issues later;
- key usage `digitalSignature` and the extended key usage `emailProtection`
  (1.3.6.1.5.5.7.3.4): the C2PA SDK (c2pa-python 0.38.1) accepts a self-signed end-entity
  certificate with exactly that profile, and refuses one without an EKU it allows;
  `documentSigning` (1.3.6.1.5.5.7.3.36) it refuses ("certificate missing required EKU");
  tests/imagegen/test_keyvault_certificate.py checks both;
- the chain as PEM in the certificate's secret, 12 months' validity, and Key Vault's own
  `AutoRenew` 30 days before expiry (a new version with a new key: the signer rereads it).

Images signed with it are valid, with an untrusted chain: nobody's verifier trusts a
self-signed certificate. docs/provenance.md says how to bring a CA-issued one; once its
version is current, the signer uses it and never creates anything again (it creates only
when the certificate does not exist at all, never a new version of one that does).

Several replicas may start at once: one that finds the certificate pending in a `Self`
create, or whose own create Key Vault refuses with 409 (another create of the same
certificate is in progress), waits for that create instead.

The identity needs `Microsoft.KeyVault/vaults/certificates/create/action` besides what
signing needs (infra/modules/c2pa-signer-role.bicep).
"""

from __future__ import annotations

import time

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    CertificatePolicyAction,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
    LifetimeAction,
)

from imagegen.core.types import SigningFailed

# O is what C2PA readers show as the signer's issuer ("issued by"): say what it is. No comma
# or semicolon in a value: both separate parts of a distinguished name.
SELF_SIGNED_SUBJECT = "CN=Durable Diffusion C2PA signer, O=Durable Diffusion (self-signed - untrusted)"
EMAIL_PROTECTION = "1.3.6.1.5.5.7.3.4"
VALIDITY_MONTHS = 12
RENEW_DAYS_BEFORE_EXPIRY = 30
# Key Vault issues a self-signed certificate in seconds; a replica's startup probe allows minutes.
CREATE_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 2.0


def self_signed_policy() -> CertificatePolicy:
    """What Key Vault is asked to make: see the module docstring."""
    return CertificatePolicy(
        issuer_name="Self",
        subject=SELF_SIGNED_SUBJECT,
        key_type=KeyType.ec,
        key_curve_name=KeyCurveName.p_256,
        exportable=False,
        reuse_key=False,
        key_usage=[KeyUsageType.digital_signature],
        enhanced_key_usage=[EMAIL_PROTECTION],
        content_type=CertificateContentType.pem,
        validity_in_months=VALIDITY_MONTHS,
        lifetime_actions=[LifetimeAction(CertificatePolicyAction.auto_renew,
                                         days_before_expiry=RENEW_DAYS_BEFORE_EXPIRY)],
    )


class CertificateNotCreated(SigningFailed):
    """Key Vault did not make the self-signed certificate; `status` is its HTTP status, if any."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


def create_self_signed(client: CertificateClient, name: str, where: str,
                       timeout: float = CREATE_TIMEOUT_SECONDS) -> KeyVaultCertificate:
    """Have Key Vault create the self-signed certificate `name`; returns it once issued.

    `where` names the certificate and vault in messages. Raises `CertificateNotCreated`."""
    try:
        poller = client.begin_create_certificate(name, self_signed_policy())
    except HttpResponseError as error:
        if error.status_code != 409:
            raise CertificateNotCreated(f"{where}: Key Vault refused to create a self-signed certificate: "
                                        f"{_first_line(error)}", error.status_code) from error
        return _wait_for_other_create(client, name, where, timeout)  # another replica's create is running
    except AzureError as error:
        raise CertificateNotCreated(f"{where}: Key Vault could not be asked to create a self-signed certificate: "
                                    f"{_first_line(error)}") from error
    try:
        result = poller.result(timeout=timeout)
    except AzureError as error:
        raise CertificateNotCreated(f"{where}: the self-signed certificate's creation could not be followed: "
                                    f"{_first_line(error)}", getattr(error, "status_code", None)) from error
    if not poller.done():
        raise CertificateNotCreated(f"{where}: Key Vault had not issued the self-signed certificate after {timeout:.0f} s")
    if isinstance(result, KeyVaultCertificate):
        return result
    raise CertificateNotCreated(f"{where}: Key Vault did not issue the self-signed certificate: {_operation_failure(result)}")


def wait_for_self_signed(client: CertificateClient, name: str, where: str,
                         timeout: float = CREATE_TIMEOUT_SECONDS) -> KeyVaultCertificate | None:
    """The self-signed certificate another replica's create is making, once issued; None when
    the certificate's pending operation is not such a create (a CSR waiting for a CA, say)."""
    try:
        operation = client.get_certificate_operation(name)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as error:
        raise CertificateNotCreated(f"{where}: its pending operation could not be read: {_first_line(error)}",
                                    error.status_code) from error
    if (operation.issuer_name or "").lower() != "self" or (operation.status or "").lower() != "inprogress":
        return None
    return _wait_for_other_create(client, name, where, timeout)


def _wait_for_other_create(client: CertificateClient, name: str, where: str, timeout: float) -> KeyVaultCertificate:
    deadline = time.monotonic() + timeout
    try:
        while True:
            operation = client.get_certificate_operation(name)
            status = (operation.status or "").lower()
            if status == "completed":
                return client.get_certificate(name)
            if status != "inprogress":
                raise CertificateNotCreated(f"{where}: Key Vault did not issue the self-signed certificate: "
                                            f"{_operation_failure(operation)}")
            if time.monotonic() > deadline:
                raise CertificateNotCreated(f"{where}: another create of the certificate was still in progress "
                                            f"after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
    except HttpResponseError as error:
        raise CertificateNotCreated(f"{where}: the certificate's creation could not be followed: {_first_line(error)}",
                                    error.status_code) from error


def _operation_failure(operation: CertificateOperation) -> str:
    error = operation.error
    detail = f"{error.code}: {error.message}" if error is not None else (operation.status_details or "no details")
    return f"status {operation.status}: {detail}"


def _first_line(error: AzureError) -> str:
    message = (getattr(error, "message", None) or str(error)).strip()
    status = getattr(error, "status_code", None)
    first = message.splitlines()[0] if message else type(error).__name__
    return f"HTTP {status}: {first}" if status else first
