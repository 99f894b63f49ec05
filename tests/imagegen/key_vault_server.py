"""A local stand-in for Azure Key Vault that speaks its REST contract for certificates,
their secrets and keys' `sign` operation.

It runs over HTTPS in a thread on a free localhost port (the Key Vault SDK refuses to send
a bearer token over plain HTTP), with its own TLS CA in `server.tls_ca_file` for the
clients' `connection_verify`. It authenticates like the service: a request without a
valid bearer token gets 401 with a `WWW-Authenticate: Bearer authorization=...,
resource="https://vault.azure.net"` challenge, and the SDK's challenge policy asks its
credential for a token for that resource and tries again.

    with KeyVaultServer() as vault:
        vault.add_certificate("c2pa-signer", chain, private_key)   # leaf first; key stays here
        vault.fail(503, times=1, operation="sign")                  # next sign: 503
        signer = KeyVaultSigner(vault.url, "c2pa-signer", vault.credential(), **vault.client_options())
        ...
        vault.requests  # what arrived: [Request(method, path, query, headers, body)]

Implemented: `GET /certificates/{name}[/{version}]`, `GET /secrets/{name}/{version}`,
`GET /keys/{name}/{version}` and `POST /keys/{name}/{version}/sign` (`ES256` over a
32-byte digest; the signature is JWS `r||s`, base64url). Errors carry the service's body
`{"error": {"code", "message"}}`.

Creating a certificate, as `CertificateClient.begin_create_certificate` drives it (the
shapes are those of the Azure SDK's recorded sessions with the real service,
azure-sdk-for-python `sdk/keyvault/azure-keyvault-certificates/tests/recordings/
test_certificates_client.pyTestCertificateClienttest_crud_operations[7.3].json`):

- `POST /certificates/{name}/create` with `{"policy": {...}}` answers **202** with the
  certificate operation `{"id": ".../certificates/{name}/pending", "issuer": {"name"},
  "csr", "cancellation_requested": false, "status": "inProgress", "status_details",
  "request_id"}`, a `Location` header pointing at `/pending` and `Retry-After`. Only EC keys
  (P-256) are made here. A create while another one for the name is in progress answers
  409 `Conflict` (our reading of the service; the SDK raises it as `HttpResponseError`).
- `GET /certificates/{name}/pending` answers the operation: for issuer `Self`, `status`
  `completed` and `target` (the certificate's URL) once the certificate is issued (after
  `self_signed_polls` polls that still say `inProgress`), or `failed` with `error` when
  `fail_creation` scripted that; for issuer `Unknown` it stays `inProgress` with its CSR
  until a CA's certificate is merged (not implemented here). No operation: 404
  `PendingCertificateNotFound`.
- The self-signed certificate has the extensions Key Vault's own have in that recording:
  key usage (critical, from the policy), basic constraints `CA:FALSE`, the policy's EKUs,
  authority and subject key identifiers (equal), 10 minutes of back-dating.
- The certificate's bundle then carries `cer`, `kid`, `sid`, `x5t` and the `policy`; its
  secret holds the chain as the policy's `contentType` (PEM or PKCS#12), without the
  non-exportable key.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.tls import issue_tls_files

RESOURCE = "https://vault.azure.net"
TENANT = "00000000-0000-0000-0000-000000000001"


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: dict


@dataclass
class _Certificate:
    version: str
    chain: list[x509.Certificate]
    key: ec.EllipticCurvePrivateKey
    content_type: str  # "application/x-pem-file" or "application/x-pkcs12"


@dataclass
class _Operation:
    """A certificate being created: what `GET /certificates/{name}/pending` shows."""

    request_id: str
    policy: dict
    key: ec.EllipticCurvePrivateKey
    csr: x509.CertificateSigningRequest
    polls_left: int  # `inProgress` answers before a self-signed certificate is issued
    status: str = "inProgress"
    error: dict | None = None


@dataclass
class _Failure:
    status: int
    times: int | None
    operation: str | None  # "sign", "create", "pending", "certificates", "secrets", "keys"; None: any


class StaticTokenCredential:
    """A credential that hands out one token, recording the scopes it was asked for.

    It stands in for Entra ID (which cannot run here); everything after the token, the
    challenge flow included, is the real SDK's.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options=None):
        from azure.core.credentials import AccessTokenInfo

        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


@dataclass
class KeyVaultServer:
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    requests: list[Request] = field(default_factory=list)
    self_signed_polls: int = 0  # `GET .../pending` answers `inProgress` this often before issuing

    def __post_init__(self) -> None:
        self._certificates: dict[str, _Certificate] = {}
        self._operations: dict[str, _Operation] = {}
        self._creation_failures: dict[str, dict] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="kv-server-"))
        self.tls_ca_file = self._folder / "tls-ca.pem"

    # -- scripting ------------------------------------------------------------------

    def add_certificate(self, name: str, chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey,
                        content_type: str = "application/x-pem-file") -> str:
        """A certificate `name` (a new version of it) with a non-exportable key; returns the version.

        An empty `chain` is a certificate whose signing request the CA has not answered yet."""
        version = uuid.uuid4().hex
        self._certificates[name] = _Certificate(version, chain, key, content_type)
        return version

    def fail_creation(self, name: str, code: str = "CertificateCreationFailed",
                      message: str = "scripted creation failure") -> None:
        """The next create of `name` ends with status `failed` and this error, no certificate."""
        self._creation_failures[name] = {"code": code, "message": message}

    def certificate(self, name: str) -> x509.Certificate | None:
        """The leaf of the current version of `name`, if it has been issued."""
        held = self._certificates.get(name)
        return held.chain[0] if held and held.chain else None

    def policy(self, name: str) -> dict | None:
        """The policy `name` was created with (`POST .../create`), as the client sent it."""
        operation = self._operations.get(name)
        return operation.policy if operation else None

    def fail(self, status: int, times: int | None = None, operation: str | None = None) -> None:
        """Answer the next `times` requests (all from now on when None) for `operation` with `status`."""
        self._failures.append(_Failure(status, times, operation))

    def credential(self) -> StaticTokenCredential:
        return StaticTokenCredential(self.token)

    def client_options(self) -> dict:
        """What a Key Vault client needs to talk to this server instead of *.vault.azure.net."""
        # The challenge names vault.azure.net, which 127.0.0.1 is not a subdomain of.
        return {"connection_verify": str(self.tls_ca_file), "verify_challenge_resource": False,
                "retry_total": 0}

    def operations(self, name: str) -> list[Request]:
        """The authenticated requests for `name` ("sign", "create", "pending", "certificates", "secrets", "keys")."""
        return [r for r in self.requests if _operation(r.method, r.path) == name and "authorization" in r.headers]

    # -- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("start() the server (or use it in a `with` block) before reading `url`")
        host, port = self._http.server_address[:2]
        return f"https://{host}:{port}"

    def start(self) -> "KeyVaultServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's session is with the service
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, headers = server._answer(self.command, self.path, dict(self.headers.items()), raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle  # noqa: N815 - http.server's names

            def log_message(self, *args) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _ca, cert_file, key_file = issue_tls_files(self._folder, "127.0.0.1")  # the CA is tls_ca_file
        context.load_cert_chain(cert_file, key_file)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "KeyVaultServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the contract ---------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        path, _, query = target.partition("?")
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("latin-1")}
        operation = _operation(method, path)
        with self._lock:
            self.requests.append(Request(method, path, query, headers, body))
        if headers.get("authorization") != f"Bearer {self.token}":
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                         f'resource="{RESOURCE}"')
            return _error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                          {"WWW-Authenticate": challenge})
        with self._lock:
            failure = self._next_failure(operation)
        if failure is not None:
            return _error(failure.status, "Throttled" if failure.status == 429 else "InternalServerError",
                          f"scripted {failure.status}")
        if "api-version=" not in query:
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        parts = [part for part in path.split("/") if part]
        if not parts or parts[0] not in ("certificates", "secrets", "keys") or len(parts) < 2:
            return _error(404, "NotFound", f"no operation at {path}")
        if operation == "create" and method == "POST":
            with self._lock:
                return self._create(parts[1], body)
        if operation == "pending" and method == "GET":
            with self._lock:
                return self._pending(parts[1])
        certificate = self._certificates.get(parts[1])
        version = parts[2] if len(parts) > 2 else ""
        if certificate is None or version not in ("", certificate.version):
            return _error(404, f"{parts[0][:-1].capitalize()}NotFound",
                          f"A {parts[0][:-1]} with (name/id) {parts[1]}/{version} was not found in this key vault.")
        if operation == "certificates" and method == "GET":
            return 200, self._certificate_bundle(parts[1], certificate), {}
        if operation == "secrets" and method == "GET":
            return 200, self._secret_bundle(parts[1], certificate), {}
        if operation == "keys" and method == "GET":
            return 200, {"key": self._jwk(parts[1], certificate), "attributes": _attributes(), "managed": True}, {}
        if operation == "sign" and method == "POST":
            return self._sign(parts[1], certificate, body)
        return _error(405, "MethodNotAllowed", f"{method} {path}")

    def _next_failure(self, operation: str) -> _Failure | None:
        for failure in self._failures:
            if failure.operation not in (None, operation):
                continue
            if failure.times is None:
                return failure
            if failure.times > 0:
                failure.times -= 1
                return failure
        return None

    def _ids(self, name: str, certificate: _Certificate) -> dict:
        return {kind: f"{self.url}/{path}/{name}/{certificate.version}"
                for kind, path in (("id", "certificates"), ("kid", "keys"), ("sid", "secrets"))}

    def _certificate_bundle(self, name: str, certificate: _Certificate) -> dict:
        if not certificate.chain:  # created with a CSR, not merged yet: no certificate to show
            return {**self._ids(name, certificate), "attributes": _attributes() | {"enabled": False}}
        der = certificate.chain[0].public_bytes(serialization.Encoding.DER)
        bundle = {**self._ids(name, certificate),
                  "x5t": base64.urlsafe_b64encode(certificate.chain[0].fingerprint(hashes.SHA1())).decode().rstrip("="),
                  "cer": base64.b64encode(der).decode(), "attributes": _attributes()}
        operation = self._operations.get(name)
        if operation is not None:
            bundle["policy"] = {"id": f"{self.url}/certificates/{name}/policy", **operation.policy}
        return bundle

    # -- creating a certificate -------------------------------------------------------

    def _operation_body(self, name: str, operation: _Operation) -> dict:
        body = {"id": f"{self.url}/certificates/{name}/pending",
                "issuer": {"name": operation.policy.get("issuer", {}).get("name", "Unknown")},
                "csr": base64.b64encode(operation.csr.public_bytes(serialization.Encoding.DER)).decode(),
                "cancellation_requested": False, "status": operation.status, "request_id": operation.request_id}
        if operation.status == "inProgress":
            body["status_details"] = ("Pending certificate created. Certificate request is in progress. This may "
                                      "take some time based on the issuer provider. Please check again later.")
        elif operation.status == "completed":
            body["target"] = f"{self.url}/certificates/{name}"
        if operation.error is not None:
            body["error"] = operation.error
        return body

    def _create(self, name: str, body: dict) -> tuple[int, dict, dict]:
        policy = body.get("policy") or {}
        key_props, x509_props = policy.get("key_props") or {}, policy.get("x509_props") or {}
        if key_props.get("kty") not in ("EC", "EC-HSM") or key_props.get("crv", "P-256") != "P-256":
            return _error(400, "BadParameter", f"this stand-in makes EC P-256 keys only, got {key_props}")
        if not x509_props.get("subject"):
            return _error(400, "BadParameter", "Property policy.x509_props.subject is required.")
        current = self._operations.get(name)
        if current is not None and current.status == "inProgress":
            return _error(409, "Conflict", f"Certificate {name} has a pending operation in progress.")
        try:  # "CN=a, O=b", as Key Vault's policies write it (no escaped commas here)
            subject = x509.Name.from_rfc4514_string(",".join(part.strip() for part in x509_props["subject"].split(",")))
        except ValueError:
            return _error(400, "BadParameter", f"Invalid subject {x509_props['subject']!r}.")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        operation = _Operation(uuid.uuid4().hex, policy, key, csr, self.self_signed_polls)
        self._operations[name] = operation
        if name not in self._certificates:  # a first version: the name exists, pending, with no certificate yet
            self._certificates[name] = _Certificate(uuid.uuid4().hex, [], key, _content_type(policy))
        location = f"{self.url}/certificates/{name}/pending?api-version=7.6&request_id={operation.request_id}"
        return 202, self._operation_body(name, operation), {"Location": location, "Retry-After": "10"}

    def _pending(self, name: str) -> tuple[int, dict, dict]:
        operation = self._operations.get(name)
        if operation is None:
            return _error(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
        issuer = operation.policy.get("issuer", {}).get("name", "Unknown")
        if operation.status == "inProgress" and issuer == "Self":
            if operation.polls_left > 0:
                operation.polls_left -= 1
            elif name in self._creation_failures:
                operation.status, operation.error = "failed", self._creation_failures.pop(name)
            else:
                issued = _self_signed(operation)
                self._certificates[name] = _Certificate(uuid.uuid4().hex, [issued], operation.key,
                                                        _content_type(operation.policy))
                operation.status = "completed"
        return 200, self._operation_body(name, operation), {}

    def _secret_bundle(self, name: str, certificate: _Certificate) -> dict:
        # A non-exportable key: the secret holds the certificate chain only.
        if certificate.content_type == "application/x-pkcs12":
            value = base64.b64encode(pkcs12.serialize_key_and_certificates(
                None, None, certificate.chain[0], certificate.chain[1:], serialization.NoEncryption())).decode()
        else:
            value = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificate.chain)
        ids = self._ids(name, certificate)
        return {"id": ids["sid"], "kid": ids["kid"], "value": value, "contentType": certificate.content_type,
                "managed": True, "attributes": _attributes()}

    def _jwk(self, name: str, certificate: _Certificate) -> dict:
        numbers = certificate.key.public_key().public_numbers()
        return {"kid": self._ids(name, certificate)["kid"], "kty": "EC", "crv": "P-256",
                "key_ops": ["sign", "verify"], "x": _b64url(numbers.x.to_bytes(32, "big")),
                "y": _b64url(numbers.y.to_bytes(32, "big"))}

    def _sign(self, name: str, certificate: _Certificate, body: dict) -> tuple[int, dict, dict]:
        if body.get("alg") != "ES256":
            return _error(400, "BadParameter", f"Invalid algorithm {body.get('alg')!r} for an EC P-256 key.")
        try:
            digest = base64.urlsafe_b64decode(body.get("value", "") + "==")
        except ValueError:
            return _error(400, "BadParameter", "`value` is not base64url.")
        if len(digest) != 32:
            return _error(400, "BadParameter", f"Invalid digest length {len(digest)} for ES256 (32).")
        r, s = decode_dss_signature(certificate.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))
        return 200, {"kid": self._ids(name, certificate)["kid"],
                     "value": _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}, {}


def _operation(method: str, path: str) -> str:
    parts = [part for part in path.split("/") if part]
    if method == "POST" and parts[-1:] == ["sign"]:
        return "sign"
    if parts[:1] == ["certificates"] and len(parts) == 3 and parts[2] in ("create", "pending"):
        return parts[2]
    return parts[0] if parts else ""


KEY_USAGES = ("digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
              "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly")


def _self_signed(operation: _Operation) -> x509.Certificate:
    """What Key Vault issues for issuer `Self`: the extensions its own self-signed certificates have."""
    x509_props = operation.policy.get("x509_props") or {}
    usages = set(x509_props.get("key_usage") or ["digitalSignature", "keyEncipherment"])
    now = datetime.now(timezone.utc)
    public_key = operation.key.public_key()
    builder = (x509.CertificateBuilder().subject_name(operation.csr.subject).issuer_name(operation.csr.subject)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=10))
               .not_valid_after(now + timedelta(days=30 * int(x509_props.get("validity_months") or 12)))
               .add_extension(x509.KeyUsage(*(name in usages for name in KEY_USAGES)), critical=True)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=False))
    if x509_props.get("ekus"):
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in x509_props["ekus"]]), critical=False)
    builder = (builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    return builder.sign(operation.key, hashes.SHA256())


def _content_type(policy: dict) -> str:
    return (policy.get("secret_props") or {}).get("contentType") or "application/x-pkcs12"


def _attributes() -> dict:
    now = int(time.time())
    return {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Recoverable"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _error(status: int, code: str, message: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    return status, {"error": {"code": code, "message": message}}, headers or {}
