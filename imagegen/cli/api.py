"""The app's HTTP API as the CLI calls it: one `Api` per deployment (devhost or Azure), with
its key or Entra token, and every way a call can fail turned into one line (`ApiError`)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from imagegen.cli.exits import CliError, Exit, one_line

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

DEFAULT_URL = "http://127.0.0.1:7071"
# How long one HTTP call may take before the CLI gives up on it, in seconds.
CALL_TIMEOUT = 60.0
SIGN_IN_HINT = "give a function key (--key or IMAGEGEN_KEY), or with sign-in on --token or --entra-scope"


class ApiError(CliError):
    """A call to the API failed: `status` is the HTTP status (0 when no answer came), `body`
    the problem details (or text) it answered; the message is one readable line of them."""

    def __init__(self, status: int, body: dict | str):
        self.status, self.body = status, body
        super().__init__(problem_line(status, body))


def problem_line(status: int, body: dict | str) -> str:
    """'Invalid job (400): detail; variants.steps: must be ...' from problem details."""
    if status == 0:
        return str(body)
    if isinstance(body, dict):
        line = f"{body.get('title') or 'Error'} ({status}): {body.get('detail') or ''}".rstrip(": ")
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        line += "".join(f"; {e.get('path', '')}: {e.get('message', '')}" for e in errors)
    else:
        line = f"HTTP {status}: {one_line(body, 300) or 'no details'}"
    if status in (401, 403):
        line += f" ({SIGN_IN_HINT})"
    elif status >= 500:
        line += " (the app failed: try again; if it keeps failing, see the app's log)"
    return line


def check_url(url: str, named: str = "--url") -> str:
    """`url` without a trailing slash; an error when it is no http(s) URL (a usage error when
    it was given as an option, `named` starting with `--`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{named} must be the app's http(s) base URL, like {DEFAULT_URL}, got {url!r}",
                       Exit.USAGE if named.startswith("--") else Exit.ERROR)
    return url.rstrip("/")


def entra_credential() -> TokenCredential:
    """Your Azure login (`az login`, environment variables, a managed identity, ...)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class EntraToken(requests.auth.AuthBase):
    """`Authorization: Bearer` with an Entra access token for `scope`, got once and again
    shortly before it expires (a long `submit --wait` outlives one token)."""

    REFRESH_SECONDS = 300

    def __init__(self, scope: str):
        self.scope = scope
        self.credential: TokenCredential | None = None
        self.token: AccessToken | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is None or self.token.expires_on - self.REFRESH_SECONDS < time.time():
            from azure.core.exceptions import ClientAuthenticationError

            self.credential = self.credential or entra_credential()
            try:
                self.token = self.credential.get_token(self.scope)
            except ClientAuthenticationError as error:
                # The credential's message says which logins it tried; it holds no token.
                raise ApiError(0, f"cannot get an Entra token for {self.scope}: {error.message} "
                               "(sign in with az login)") from None
        request.headers["Authorization"] = f"Bearer {self.token.token}"
        return request


class Api:
    """The HTTP API of one deployment (devhost or Azure)."""

    def __init__(self, url: str, key: str | None = None, token: str | None = None, entra_scope: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if key:
            self.session.headers["x-functions-key"] = key
        # Behind sign-in (IMAGEGEN_SIGN_IN=entra): an Entra access token for the app registration.
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif entra_scope:
            self.session.auth = EntraToken(entra_scope)

    def call(self, method: str, path: str, *, timeout: float = CALL_TIMEOUT, **kwargs: Any) -> requests.Response:
        """The answer to one call; `ApiError` when none came or it is a 4xx/5xx."""
        try:
            response = self.session.request(method, f"{self.url}/api/{path}", timeout=timeout, **kwargs)
        except requests.RequestException as error:
            raise ApiError(0, self.no_answer(error, timeout)) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise ApiError(response.status_code, body if isinstance(body, dict) else response.text)
        return response

    def call_json(self, method: str, path: str, **kwargs: Any) -> dict:
        """The JSON object a call answered; an error naming the URL when it answered something else."""
        response = self.call(method, path, **kwargs)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            kind = response.headers.get("content-type") or "no content type"
            raise ApiError(0, f"{self.url}/api/{path} answered {response.status_code} with {kind}, not the app's "
                           f"JSON: is {self.url} the app's base URL (--url or IMAGEGEN_URL)?")
        return answer

    def no_answer(self, error: requests.RequestException, timeout: float) -> str:
        """Why a call got no answer, and what to do, in one line."""
        if isinstance(error, requests.exceptions.SSLError):
            return (f"cannot make a secure (TLS) connection to {self.url}: {ssl_reason(error)}: check the address; "
                    "a private CA's certificate goes in REQUESTS_CA_BUNDLE")
        if isinstance(error, requests.exceptions.ConnectTimeout):
            return f"cannot reach {self.url}: no answer to connect within {round(timeout, 1):g}s: check the address and your network"
        if isinstance(error, requests.ConnectionError):
            return (f"cannot reach {self.url} ({socket_reason(error)}): is the app running? Start it with "
                    "`python -m devhost start`, or point --url (or IMAGEGEN_URL) at it")
        if isinstance(error, requests.Timeout):
            return f"{self.url} did not answer within {round(timeout, 1):g}s: try again; if it keeps happening, see the app's log"
        if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                              requests.exceptions.InvalidSchema)):
            return f"--url must be the app's http(s) base URL, like {DEFAULT_URL}, got {self.url!r}"
        return f"a call to {self.url} failed: {type(error).__name__}: {one_line(str(error), 300)}"

    def submit(self, body: bytes, content_type: str, params: dict[str, str] | None = None) -> dict:
        return self.call_json("POST", "jobs", data=body, headers={"content-type": content_type}, params=params)

    def job(self, job_id: str, timeout: float = CALL_TIMEOUT) -> dict:
        return self.call_json("GET", f"jobs/{quote_id(job_id)}", timeout=timeout)


def quote_id(job_id: str) -> str:
    """A job id as one path segment: `#`, `?` and `/` in it cannot change the route."""
    from urllib.parse import quote

    return quote(job_id, safe="")


def socket_reason(error: Exception) -> str:
    """'connection refused' out of urllib3's long 'Max retries exceeded ... [Errno 111] ...'."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    return found.group(1).strip().lower() if found else "no connection"


def ssl_reason(error: Exception) -> str:
    found = re.search(r"(certificate verify failed[^'\")\]]*|wrong version number|[A-Z_]+:[^'\")\]]+)", str(error))
    return found.group(1).strip() if found else "TLS handshake failed"
