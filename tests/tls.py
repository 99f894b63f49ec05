"""TLS for the tests' local HTTPS servers: a throw-away CA and a server certificate it issued."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def issue_tls_files(folder: Path, host: str, prefix: str = "tls") -> tuple[str, str, str]:
    """A new CA and a certificate it issued for `host` (a DNS name or an IP address), written
    under `folder` as `{prefix}-ca.pem`, `{prefix}.pem` and `{prefix}-key.pem`: (CA, certificate, key)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix} test CA")])
    ca = _certificate(ca_name, ca_key.public_key(), ca_name, ca_key, san=None)
    try:
        san = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    leaf = _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), key.public_key(),
                        ca_name, ca_key, san=san)
    files = folder / f"{prefix}-ca.pem", folder / f"{prefix}.pem", folder / f"{prefix}-key.pem"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(files[0]), str(files[1]), str(files[2])


def _certificate(subject: x509.Name, public_key, issuer: x509.Name, issuer_key,
                 san: x509.GeneralName | None) -> x509.Certificate:
    """A CA certificate when `san` is None, else a server certificate for that name."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=san is None, path_length=None), critical=True))
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())
