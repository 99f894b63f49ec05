"""C2PA Content Credentials: sign generated images and verify them.

Every image the pipeline makes says, in a signed C2PA manifest embedded in the file,
that it was made by a trained algorithm (IPTC `trainedAlgorithmicMedia`), by which
software and model, and for which job and variant. A reader (this module's `verify`,
`imagegen verify`, or any C2PA tool) checks the signature and that the pixels are the
ones that were signed (the hard binding).

Signers (setting `C2PA_SIGNER`):
- `local`: a development CA and an ES256 signing certificate generated on first use
  into `.devhost/c2pa/` (never committed). Development only: nobody trusts that CA but
  whoever passes it to `imagegen verify --trust`.
- `keyvault`: the private key stays in Azure Key Vault; each claim is signed by Key
  Vault's `sign` operation (imagegen/checks/keyvault_signer.py).
- `off`: images are not signed.

See docs/provenance.md.
"""

from __future__ import annotations

import datetime
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel

from imagegen.core.types import SigningFailed, Variant

if TYPE_CHECKING:
    from imagegen.checks.keyvault_signer import KeyVaultSigner
    from imagegen.core.settings import Settings

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROJECT_ASSERTION = "org.durable-diffusion.generation"
MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
SIGNERS = ("local", "keyvault", "off")



class Generation(BaseModel):
    """What the manifest says about how one image was made."""

    job_id: str
    variant_id: str
    model: str
    model_revision: str | None = None
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str
    prompt: str | None = None  # recorded only when C2PA_INCLUDE_PROMPT is true


class Source(BaseModel):
    """The img2img source image: recorded as the `parentOf` ingredient."""

    data: bytes
    format: str
    title: str = "source"

    @classmethod
    def of(cls, data: bytes, title: str) -> "Source":
        """A source image, its format read from its bytes (PNG, JPEG or WebP)."""
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return cls(data=data, format=(image.format or "").lower(), title=title)


class Signed(BaseModel):
    """A signed image and what identifies its credentials."""

    data: bytes
    manifest_label: str
    signer: str  # the signing certificate's subject


class Verification(BaseModel):
    """What a reader found in one image."""

    has_credentials: bool
    manifest_label: str | None = None  # the active manifest's label
    signature_valid: bool = False
    hard_binding_valid: bool = False
    trusted: bool = False
    signer: str | None = None
    digital_source_type: str | None = None
    job_id: str | None = None
    variant_id: str | None = None
    ingredients: list[str] = []
    failures: list[str] = []

    @property
    def valid(self) -> bool:
        return self.has_credentials and self.signature_valid and self.hard_binding_valid


class SigningKey(BaseModel):
    """A signing certificate chain (PEM, leaf first) with its private key (PEM)."""

    chain_pem: str
    key_pem: str
    subject: str

    def c2pa_signer(self, tsa_url: str | None = None) -> c2pa.Signer:
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, self.chain_pem.encode(),
                                                         self.key_pem.encode(), tsa_url.encode() if tsa_url else None))

    def last_failure(self) -> str | None:
        return None

    def last_problem(self) -> str | None:
        return None


# 1. Development signer: a CA and a leaf certificate, made once and kept locally.

def local_state_dir() -> Path:
    """`.devhost/c2pa/` next to the app, like the rest of devhost's local state."""
    return Path.cwd() / ".devhost" / "c2pa"


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Durable Diffusion (development, untrusted)"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 issuer_key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=3650 if ca else 825))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        # C2PA accepts a signing certificate only with one of a few extended key usages.
        builder = (builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def local_signing_key(folder: Path | None = None) -> SigningKey:
    """The development signing key, generated on first use."""
    folder = folder or local_state_dir()
    chain_file, key_file, ca_file = folder / "signer-chain.pem", folder / "signer-key.pem", folder / "dev-ca.pem"
    if not (chain_file.exists() and key_file.exists() and ca_file.exists()):
        _create_local_signing_key(folder)
    chain_pem = chain_file.read_text()
    leaf = x509.load_pem_x509_certificates(chain_pem.encode())[0]
    return SigningKey(chain_pem=chain_pem, key_pem=key_file.read_text(), subject=leaf.subject.rfc4514_string())


def _create_local_signing_key(folder: Path) -> None:
    # Several processes (devhost's workers, tests) may get here at once: each writes a
    # whole set into its own folder and renames it into place; the first rename wins, so
    # nobody ever reads one process's key with another's certificate.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Durable Diffusion development CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    leaf = _certificate(_name("Durable Diffusion development signer"), leaf_key, ca_name, ca_key, ca=False)
    key_file = staging / "signer-key.pem"
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    key_file.chmod(0o600)
    (staging / "signer-chain.pem").write_text(_pem(leaf) + _pem(ca))
    (staging / "dev-ca.pem").write_text(_pem(ca))
    if folder.exists() and not any(folder.iterdir()):
        folder.rmdir()  # an empty folder (made by hand) would block the rename
    try:
        staging.rename(folder)
    except OSError:  # another process's set is already in place: use that one
        shutil.rmtree(staging, ignore_errors=True)


def local_ca_path(folder: Path | None = None) -> Path:
    """Where the development CA is: the trust anchor for `imagegen verify --trust`."""
    return (folder or local_state_dir()) / "dev-ca.pem"


def signer_from_settings(settings: "Settings") -> "SigningKey | KeyVaultSigner | None":
    """The signer `C2PA_SIGNER` names, or None when signing is `off`.

    Keep it (`Services.signer` does, per process): a Key Vault signer caches the certificate
    chain and its credential's token between images.
    """
    if settings.c2pa_signer == "off":
        return None
    if settings.c2pa_signer == "local":
        return local_signing_key()
    from imagegen.checks.keyvault_signer import KeyVaultSigner  # the Key Vault SDK loads only where it signs

    return KeyVaultSigner(settings.c2pa_keyvault_url or "", settings.c2pa_cert_name or "",
                          create_self_signed=settings.c2pa_create_certificate == "self-signed")


# 2. The manifest: what was made, by what, from what.

def manifest_definition(generation: Generation, software: str, source: Source | None) -> dict:
    agent = {"name": software, "model": generation.model}
    if generation.model_revision:
        agent["model_revision"] = generation.model_revision
    actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": agent}]
    if source is not None:
        actions.append({"action": "c2pa.edited", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                        "softwareAgent": agent})
    return {
        "claim_generator_info": [{"name": software}],
        "title": f"{generation.job_id}/{generation.variant_id}",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            {"label": PROJECT_ASSERTION, "data": generation.model_dump(exclude_none=True)},
        ],
    }


# 3. Signing.

def sign(data: bytes, format: str, generation: Generation, key: "SigningKey | KeyVaultSigner", software: str,
         source: Source | None = None, tsa_url: str | None = None) -> Signed:
    """`data` with an embedded, signed C2PA manifest; raises `SigningFailed` with the reason."""
    try:
        return _sign(data, format, generation, key, software, source, tsa_url)
    except SigningFailed:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to sign holds the image back
        raise SigningFailed(key.last_failure() or f"{type(error).__name__}: {error}", key.last_problem()) from error


def _sign(data: bytes, format: str, generation: Generation, key: "SigningKey | KeyVaultSigner", software: str,
          source: Source | None, tsa_url: str | None) -> Signed:
    mime = MIME_TYPES[format.lower()]
    # No thumbnail in the manifest: the image is its own preview, and a thumbnail of a
    # large image more than doubles the file.
    no_thumbnail = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    builder = c2pa.Builder(manifest_definition(generation, software, source), context=no_thumbnail)
    if source is not None:
        # The SDK hashes the source into the ingredient, so the parent is bound to this image.
        builder.add_ingredient_from_stream({"title": source.title, "relationship": "parentOf"},
                                           MIME_TYPES[source.format.lower()], io.BytesIO(source.data))
    signer = key.c2pa_signer(tsa_url)
    output = io.BytesIO()
    try:
        builder.sign(signer, mime, io.BytesIO(data), output)
    finally:
        signer.close()
    signed = output.getvalue()
    reader = c2pa.Reader(mime, io.BytesIO(signed))
    label = json.loads(reader.json())["active_manifest"]
    return Signed(data=signed, manifest_label=label, signer=key.subject)


def software_agent() -> str:
    """This project and its version, as the manifest's claim generator names it."""
    import importlib.metadata

    try:
        return f"Durable Diffusion {importlib.metadata.version('durable-diffusion')}"
    except importlib.metadata.PackageNotFoundError:  # a checkout that was never installed
        return "Durable Diffusion"


def sign_variant(data: bytes, job_id: str, variant: Variant, model: str, revision: str | None,
                 signer: "SigningKey | KeyVaultSigner | None", settings: "Settings",
                 source: Source | None = None) -> Signed | None:
    """A pipeline image signed by `signer` (`signer_from_settings`); None when signing is `off`.

    Raises `SigningFailed` with the reason; the caller holds the image back (fail closed).
    """
    if signer is None:
        return None
    generation = Generation(
        job_id=job_id, variant_id=variant.id, model=model, model_revision=revision, seed=variant.seed,
        steps=variant.steps, guidance=variant.guidance, width=variant.width, height=variant.height,
        scheduler=variant.scheduler, prompt=variant.prompt if settings.c2pa_include_prompt else None,
    )
    return sign(data, variant.format, generation, signer, software_agent(), source, settings.c2pa_tsa_url)


# 4. Verification.

def _reader_context(trust_pem: str | None) -> c2pa.Context:
    verify = {"verify_trust": trust_pem is not None}
    settings: dict = {"verify": verify}
    if trust_pem is not None:
        settings["trust"] = {"trust_anchors": trust_pem}
    return c2pa.Context.from_dict(settings)


def verify(data: bytes, format: str, trust_pem: str | None = None) -> Verification:
    """What the image's credentials say, and whether they hold."""
    mime = MIME_TYPES[format.lower()]
    reader = c2pa.Reader.try_create(mime, io.BytesIO(data), context=_reader_context(trust_pem))
    if reader is None:
        return Verification(has_credentials=False, failures=["no Content Credentials"])
    store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    failures = [f"{s['code']}: {s.get('explanation', '')}"
                for s in (store.get("validation_status") or [])]
    codes = {s["code"] for s in (store.get("validation_status") or [])}
    assertions = {a["label"]: a["data"] for a in manifest.get("assertions", [])}
    actions = assertions.get("c2pa.actions.v2", {}).get("actions", [])
    generation = assertions.get(PROJECT_ASSERTION, {})
    state = reader.get_validation_state()
    return Verification(
        has_credentials=True,
        manifest_label=store["active_manifest"],
        signature_valid=not any(code.startswith(("claimSignature.", "signingCredential.invalid")) for code in codes),
        hard_binding_valid=not any(code.startswith(("assertion.dataHash", "assertion.bmffHash", "assertion.boxesHash"))
                                   for code in codes),
        trusted=trust_pem is not None and state == "Trusted",
        signer=(manifest.get("signature_info") or {}).get("common_name")
        or (manifest.get("signature_info") or {}).get("issuer"),
        digital_source_type=next((a.get("digitalSourceType") for a in actions if a["action"] == "c2pa.created"), None),
        job_id=generation.get("job_id"),
        variant_id=generation.get("variant_id"),
        ingredients=[i.get("title", "") for i in manifest.get("ingredients", [])
                     if i.get("relationship") == "parentOf"],
        failures=failures,
    )
