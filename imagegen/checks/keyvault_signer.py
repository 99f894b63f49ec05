"""The `keyvault` C2PA signer: the private key never leaves Azure Key Vault.

A Key Vault certificate (`C2PA_CERT_NAME` in `C2PA_KEYVAULT_URL`) is three objects with
one name: the certificate, a key (the private key, non-exportable) and a secret (the
certificate chain; without the private key when the key is non-exportable). This signer

1. reads the certificate (`GET /certificates/{name}`): its current version's key id and
   secret id, and the leaf certificate;
2. reads the chain from the secret of that same version (`GET /secrets/{name}/{version}`),
   PEM (`application/x-pem-file`) or PKCS#12 (`application/x-pkcs12`), leaf first;
3. signs each C2PA claim through the c2pa SDK's callback signer: the claim's SHA-256
   digest goes to Key Vault's `sign` operation (`POST /keys/{name}/{version}/sign`,
   `ES256`) and the raw `r||s` signature comes back.

Pinning the key and the secret to the certificate's version keeps key and chain from the
same certificate while the certificate is renewed. The certificate and chain are read
once per `CERTIFICATE_TTL_SECONDS`, so a renewal is picked up without a restart; each
signature is one Key Vault call.

When the certificate does not exist and `create_self_signed` is set
(`C2PA_CREATE_CERTIFICATE=self-signed`), step 1 first has Key Vault create a self-signed one
(imagegen/checks/keyvault_certificate.py), so a first deployment signs.

Credentials: `DefaultAzureCredential` (the app's managed identity in Azure, with
`AZURE_CLIENT_ID` naming the user-assigned one). The identity needs read on the
certificate, its secret and its key, `sign` on the key, and `create` on certificates for
the self-signed one: the custom role in infra/modules/c2pa-signer-role.bicep.

A certificate that cannot be used raises `KeyVaultUnusable`, whose `problem` says what is
wrong in words safe to show to anyone (`GET /api/health` does), while `reason` keeps Key
Vault's own message for the log and the variant's error.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from imagegen.checks.keyvault_certificate import CertificateNotCreated, create_self_signed, wait_for_self_signed
from imagegen.core.types import SigningFailed

CERTIFICATE_TTL_SECONDS = 3600.0


class KeyVaultUnusable(SigningFailed):
    """The signing certificate cannot be used. `reason` (for the log) may quote Key Vault;
    `problem` is a fixed sentence with at most an HTTP status, safe to show anonymously."""

    problem: str

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(reason, problem)


def _public_problem(status: int | None, what: str) -> str:
    """What went wrong with `what`, in words that carry nothing of Key Vault's answer but its status."""
    if status in (401, 403):
        return (f"Key Vault refused the app's identity (HTTP {status}) when it tried to {what}; "
                f"the identity needs the C2PA signer role on the vault")
    if status is None:
        return f"Key Vault could not be reached to {what}"
    return f"Key Vault failed (HTTP {status}) when the app tried to {what}"


class _Loaded:
    """One certificate version: its chain (PEM, leaf first), subject and key client."""

    def __init__(self, chain_pem: str, subject: str, crypto: CryptographyClient, loaded_at: float,
                 self_signed: bool) -> None:
        self.chain_pem = chain_pem
        self.subject = subject
        self.crypto = crypto
        self.loaded_at = loaded_at
        self.self_signed = self_signed


class KeyVaultSigner:
    """Signs C2PA claims with a Key Vault certificate's key; see the module docstring.

    `create_self_signed`: when the certificate does not exist, have Key Vault create a
    self-signed one (`C2PA_CREATE_CERTIFICATE=self-signed`). `client_options` go to every Key
    Vault client (e.g. `connection_verify` for a private CA bundle, `verify_challenge_resource`,
    `retry_total`).
    """

    def __init__(self, vault_url: str, certificate_name: str, credential: TokenCredential | None = None,
                 *, create_self_signed: bool = False, **client_options: Any) -> None:
        if credential is None:
            from azure.identity import DefaultAzureCredential  # managed identity in Azure

            credential = DefaultAzureCredential()
        self.vault_url = vault_url.rstrip("/")
        self.certificate_name = certificate_name
        self._credential = credential
        self._options = client_options
        self._certificates = CertificateClient(self.vault_url, credential, **client_options)
        self._secrets = SecretClient(self.vault_url, credential, **client_options)
        self.create_self_signed = create_self_signed
        self.created_self_signed = False  # this process had Key Vault create the certificate
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._failure = threading.local()

    # -- what the c2pa signer needs ----------------------------------------------------

    @property
    def subject(self) -> str:
        return self._current().subject

    @property
    def chain_pem(self) -> str:
        return self._current().chain_pem

    @property
    def certificate_origin(self) -> str:
        """`self-signed` (valid, but nobody trusts its chain) or `issued` (by a CA)."""
        return "self-signed" if self._current().self_signed else "issued"

    def c2pa_signer(self, tsa_url: str | None = None):
        import c2pa

        loaded = self._current()
        self._failure.reason = self._failure.problem = None

        def sign_claim(data: bytes) -> bytes:
            try:
                digest = hashlib.sha256(data).digest()
                return loaded.crypto.sign(SignatureAlgorithm.es256, digest).signature
            except AzureError as error:
                # The c2pa SDK reports a callback that raised only as "COSE signature
                # invalid"; keep the real reason for the variant's `unchecked` error.
                self._failure.reason = f"Key Vault sign failed: {_reason(error)}"
                self._failure.problem = _public_problem(getattr(error, "status_code", None), "sign with the signing key")
                raise

        return c2pa.Signer.from_callback(sign_claim, c2pa.C2paSigningAlg.ES256, loaded.chain_pem, tsa_url)

    def last_failure(self) -> str | None:
        """Why the last signature on this thread failed in Key Vault, when it did."""
        return getattr(self._failure, "reason", None)

    def last_problem(self) -> str | None:
        """The same, in words safe to show anyone (`KeyVaultUnusable.problem`)."""
        return getattr(self._failure, "problem", None)

    # -- reading the certificate -------------------------------------------------------

    def _current(self) -> _Loaded:
        with self._lock:
            now = time.monotonic()
            if self._loaded is None or now - self._loaded.loaded_at > CERTIFICATE_TTL_SECONDS:
                self._loaded = self._load(now)
            return self._loaded

    def _load(self, now: float) -> _Loaded:
        where = f"Key Vault certificate {self.certificate_name!r} in {self.vault_url}"
        try:
            certificate = self._certificate(where)
            if not certificate.cer or not certificate.key_id or not certificate.secret_id:
                raise KeyVaultUnusable(f"{where} has no issued certificate yet (is its issuance pending?)",
                                       "the signing certificate's request waits for its CA: merge the issued "
                                       "certificate into it")
            secret_version = certificate.secret_id.rstrip("/").rsplit("/", 1)[-1]
            secret = self._secrets.get_secret(self.certificate_name, secret_version)
        except AzureError as error:
            raise KeyVaultUnusable(f"{where} could not be read: {_reason(error)}",
                                   _public_problem(getattr(error, "status_code", None), "read the signing certificate"),
                                   ) from error
        leaf = x509.load_der_x509_certificate(bytes(certificate.cer))
        chain = _chain(secret.value or "", secret.properties.content_type, leaf, where)
        public_key = leaf.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
            raise KeyVaultUnusable(f"{where} must have an EC P-256 key for ES256, got {public_key.__class__.__name__}",
                                   "the signing certificate's key is not EC P-256, which C2PA's ES256 needs")
        crypto = CryptographyClient(certificate.key_id, self._credential, **self._options)
        pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
        return _Loaded(pem, leaf.subject.rfc4514_string(), crypto, now, self_signed=leaf.issuer == leaf.subject)

    def _certificate(self, where: str) -> Any:
        """The certificate; created self-signed first when it does not exist and that is allowed,
        or awaited when another replica's create of it is in progress."""
        try:
            certificate = self._certificates.get_certificate(self.certificate_name)
        except ResourceNotFoundError as error:
            if not self.create_self_signed:
                raise KeyVaultUnusable(f"{where} does not exist (C2PA_CREATE_CERTIFICATE is off): "
                                       f"{_reason(error)}",
                                       "the signing certificate does not exist in Key Vault, and creating a "
                                       "self-signed one is off (C2PA_CREATE_CERTIFICATE)") from error
            certificate = None
        try:
            if certificate is None:
                certificate = create_self_signed(self._certificates, self.certificate_name, where)
                self.created_self_signed = True
            elif not certificate.cer and self.create_self_signed:
                certificate = wait_for_self_signed(self._certificates, self.certificate_name, where) or certificate
        except CertificateNotCreated as failure:
            raise KeyVaultUnusable(failure.reason, _public_problem(failure.status, "create a self-signed "
                                                                                    "signing certificate")) from failure
        return certificate


def _chain(value: str, content_type: str | None, leaf: x509.Certificate, where: str) -> list[x509.Certificate]:
    """The secret's certificates, the leaf first, then each issuer in order up to the root."""
    try:
        if content_type == "application/x-pkcs12":
            _, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(value), None)
            certificates = ([cert] if cert else []) + list(extra)
        else:
            certificates = x509.load_pem_x509_certificates(value.encode())
    except ValueError as error:
        raise KeyVaultUnusable(f"{where}: its secret does not hold a certificate chain ({content_type})",
                               "the signing certificate's secret holds no certificate chain") from error
    rest = [c for c in certificates if c != leaf]
    chain = [leaf]
    while rest:
        issuer = next((c for c in rest if c.subject == chain[-1].issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        rest.remove(issuer)
    return chain


def _reason(error: AzureError) -> str:
    status = getattr(error, "status_code", None)
    message = getattr(error, "message", None) or str(error)
    first_line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    return f"HTTP {status}: {first_line}" if status else first_line
