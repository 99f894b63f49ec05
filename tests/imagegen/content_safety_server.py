"""A local stand-in for Azure AI Content Safety that speaks its REST contract (2023-10-01).

It runs in a thread on a free localhost port, so the real `azure-ai-contentsafety` client
(and so our `azure` provider) can be tested end to end. Each test scripts what it answers:

    with ContentSafetyServer() as server:
        server.text_severity("sword", "Violence", 4)      # texts containing "sword"
        server.blocklist_item("brand-names", "acme")      # a blocklist and one term
        server.image_severity("Sexual", 2)                # every image
        server.fail(429, times=1, retry_after_ms=20)      # next request: 429, then normal
        server.fail(500)                                  # every request from now: 500
        provider = AzureProvider.connect(server.endpoint, server.key, ...)
        ...
        server.requests  # what arrived: [Request(path, headers, body)], bodies parsed

What it checks, like the service: the `Ocp-Apim-Subscription-Key` header (401 when it is
not `server.key`), the api-version, text at most 10,000 characters, categories among the
four, blocklist names that exist (404 otherwise), image content that is base64, at most
4 MiB decoded, decodes as an image and is 50-2048 px a side (400 otherwise).
Answers carry the service's error body `{"error": {"code", "message"}}`.
Text matching is case-insensitive substring matching: enough for tests, not the service's
classifier.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
API_VERSION = "2023-10-01"
MAX_TEXT_CHARS = 10_000
MAX_IMAGE_BYTES = 4 * 1024 * 1024


@dataclass
class Request:
    path: str  # "/contentsafety/text:analyze" or "/contentsafety/image:analyze"
    query: str
    headers: dict[str, str]
    body: dict  # the parsed JSON body


@dataclass
class _Failure:
    status: int
    times: int | None  # None: every request from now on
    retry_after_ms: int | None
    code: str


@dataclass
class ContentSafetyServer:
    key: str = "test-key"
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._terms: list[tuple[str, str, int]] = []  # (term, category, severity)
        self._blocklists: dict[str, list[str]] = {}
        self._image_severities: dict[str, int] = {}
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None

    # -- scripting ------------------------------------------------------------------

    def text_severity(self, term: str, category: str, severity: int) -> None:
        """Texts that contain `term` (any case) get at least `severity` in `category`."""
        self._terms.append((term.lower(), category, severity))

    def blocklist_item(self, blocklist: str, term: str) -> None:
        """Create `blocklist` if needed and add `term`; texts containing it report a match."""
        self._blocklists.setdefault(blocklist, []).append(term)

    def image_severity(self, category: str, severity: int) -> None:
        """Every image gets `severity` in `category`."""
        self._image_severities[category] = severity

    def fail(self, status: int, times: int | None = None, retry_after_ms: int | None = None) -> None:
        """Answer the next `times` requests (all from now on when None) with `status`."""
        code = {400: "InvalidRequestBody", 401: "Unauthorized", 404: "ResourceNotFound",
                429: "TooManyRequests", 503: "ServerBusy"}.get(status, "InternalError")
        self._failures.append(_Failure(status, times, retry_after_ms, code))

    def bodies(self, kind: str) -> list[dict]:
        """The bodies of the `kind` ("text" or "image") requests received, in order."""
        return [request.body for request in self.requests if request.path.endswith(f"/{kind}:analyze")]

    # -- lifecycle ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._http is None:
            raise RuntimeError("start() the server (or use it in a `with` block) before reading `endpoint`")
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "ContentSafetyServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, body, headers = server._answer(self.path, dict(self.headers.items()), raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        # A short poll makes stop() quick: shutdown() waits for the loop to look up.
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "ContentSafetyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the contract ---------------------------------------------------------------

    def _answer(self, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, dict]:
        path, _, query = target.partition("?")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsed": raw.decode("latin-1")}
        with self._lock:
            self.requests.append(Request(path, query, headers, body))
            failure = self._next_failure()
        if failure is not None:
            extra = {"retry-after-ms": str(failure.retry_after_ms)} if failure.retry_after_ms is not None else {}
            return _error(failure.status, failure.code, f"scripted {failure.status}", extra)
        if {k.lower(): v for k, v in headers.items()}.get("ocp-apim-subscription-key") != self.key:
            return _error(401, "Unauthorized", "Access denied due to invalid subscription key.")
        if f"api-version={API_VERSION}" not in query:
            return _error(404, "ResourceNotFound", f"api-version {query!r} is not {API_VERSION}")
        categories = body.get("categories") or list(CATEGORIES)
        if not isinstance(categories, list) or any(c not in CATEGORIES for c in categories):
            return _error(400, "InvalidRequestBody", f"unknown categories {categories!r}")
        if path == "/contentsafety/text:analyze":
            return self._analyze_text(body, categories)
        if path == "/contentsafety/image:analyze":
            return self._analyze_image(body, categories)
        return _error(404, "ResourceNotFound", f"no operation at {path}")

    def _next_failure(self) -> _Failure | None:
        while self._failures:
            failure = self._failures[0]
            if failure.times is None:
                return failure
            if failure.times > 0:
                failure.times -= 1
                return failure
            self._failures.pop(0)
        return None

    def _analyze_text(self, body: dict, categories: list[str]) -> tuple[int, dict, dict]:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _error(400, "InvalidRequestBody", "`text` must be a non-empty string")
        if len(text) > MAX_TEXT_CHARS:
            return _error(400, "InvalidRequestBody", f"text has {len(text)} characters, over {MAX_TEXT_CHARS}")
        names = body.get("blocklistNames") or []
        for name in names:
            if name not in self._blocklists:
                return _error(404, "ResourceNotFound", f"blocklist {name!r} not found")
        lowered = text.lower()
        matches = [
            {"blocklistName": name, "blocklistItemId": f"{name}-{index}", "blocklistItemText": term}
            for name in names
            for index, term in enumerate(self._blocklists[name])
            if term.lower() in lowered
        ]
        if matches and body.get("haltOnBlocklistHit"):
            return 200, {"blocklistsMatch": matches, "categoriesAnalysis": []}, {}
        severities = {category: 0 for category in categories}
        for term, category, severity in self._terms:
            if term in lowered and category in severities:
                severities[category] = max(severities[category], severity)
        analysis = [{"category": c, "severity": s} for c, s in severities.items()]
        return 200, {"blocklistsMatch": matches, "categoriesAnalysis": analysis}, {}

    def _analyze_image(self, body: dict, categories: list[str]) -> tuple[int, dict, dict]:
        image = body.get("image") or {}
        if "content" in image and "blobUrl" in image:
            return _error(400, "InvalidRequestBody", "give `image.content` or `image.blobUrl`, not both")
        try:
            data = base64.b64decode(image.get("content", ""), validate=True)
        except (binascii.Error, ValueError):
            return _error(400, "InvalidRequestBody", "`image.content` is not base64")
        if len(data) > MAX_IMAGE_BYTES:
            return _error(400, "InvalidRequestBody", f"image is {len(data)} bytes, over {MAX_IMAGE_BYTES}")
        try:
            with Image.open(io.BytesIO(data)) as decoded:
                decoded.load()
                width, height = decoded.size
        except Exception:  # noqa: BLE001 - any decoding failure is the client's bad image
            return _error(400, "InvalidImageFormat", "image could not be decoded")
        if not (50 <= width <= 2048 and 50 <= height <= 2048):
            return _error(400, "InvalidImageSize", f"image is {width}x{height}, outside 50-2048 px")
        analysis = [{"category": c, "severity": self._image_severities.get(c, 0)} for c in categories]
        return 200, {"categoriesAnalysis": analysis}, {}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> tuple[int, dict, dict]:
    return status, {"error": {"code": code, "message": message}}, headers or {}
