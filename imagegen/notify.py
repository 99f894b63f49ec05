"""Webhook notifications: a small JSON message when a job awaits review and when it ends.

A URL named in a job is a request this server makes on a user's behalf, so it is held to
the deployment's rules (server-side request forgery is the risk): `https` only, a host in
`IMAGEGEN_NOTIFY_HOSTS`, and every address that host resolves to public — never loopback,
private, link-local (the cloud metadata endpoint lives there), multicast or reserved. It is
checked at submit, so a bad URL refuses the job with field, rule and value, and again
before each send, because DNS answers change. Redirects are never followed (a listed host
could redirect to a private one).

`IMAGEGEN_NOTIFY_URL` is the operator's own setting, not a user's: it is used as set (in
Azure it is an https Teams, Slack or Logic Apps webhook; locally it may be a receiver on
127.0.0.1).

Sending never raises: it tries a few times with a short timeout each and returns what
happened, which the manifest records. A failing webhook never fails or holds up a job.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from datetime import datetime, timezone
from typing import Callable, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from imagegen.types import FieldError, JobValidationError

NotifyEvent = Literal["awaiting_review", "ended"]

ATTEMPTS = 3  # a webhook that fails three times, a few seconds apart, is down
TIMEOUT_SECONDS = 10  # per attempt: connect and read
RETRY_DELAYS = (1.0, 3.0)  # seconds before the 2nd and 3rd attempt
MAX_RESPONSE_TEXT = 200  # of an error response kept in the manifest

Resolver = Callable[[str, int], list[str]]


class NotifyRecord(BaseModel):
    """One notification as the manifest records it: never the URL (it may hold a token)."""

    event: NotifyEvent
    host: str = Field(description="The webhook's host (the URL itself may carry a secret token)")
    status: Literal["sent", "failed", "refused"]
    attempts: int = Field(ge=0)
    http_status: int | None = None
    error: str | None = None
    at: datetime


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (both families)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """`host` is listed, or a subdomain of a `*.example.com` entry."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        if host == entry:
            return True
    return False


def address_problem(address: str) -> str | None:
    """Why the app must not call `address`, or None when it is a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "private", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "not public"
    return None


def job_url_problems(url: str, allowed: tuple[str, ...], resolver: Resolver = resolve,
                     path: str = "notify.url", forbidden: Callable[[str], str | None] = address_problem,
                     ) -> list[FieldError]:
    """What is wrong with a job's own webhook URL under these deployment rules ([] if nothing)."""
    return checked_job_url(url, allowed, resolver, path, forbidden)[0]


def checked_job_url(url: str, allowed: tuple[str, ...], resolver: Resolver = resolve, path: str = "notify.url",
                    forbidden: Callable[[str], str | None] = address_problem) -> tuple[list[FieldError], list[str]]:
    """The problems of a job's webhook URL, and the addresses its host resolved to when it has none."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https":
        return [FieldError(path=path, rule="https_only", message=f"`{path}` must be an https URL, got {url[:60]!r}")], []
    if not allowed:
        return [FieldError(path=path, rule="notify_hosts", message=(
            f"`{path}` names host {host!r}, but this deployment allows no webhook hosts in jobs "
            "(setting `IMAGEGEN_NOTIFY_HOSTS`); remove `notify` or ask the operator to allow the host"))], []
    if not host_allowed(host, allowed):
        return [FieldError(path=path, rule="notify_hosts", message=(
            f"`{path}` names host {host!r}, which is not one this deployment allows "
            f"(`IMAGEGEN_NOTIFY_HOSTS`: {', '.join(allowed)})"))], []
    try:
        addresses = resolver(host, parts.port or 443)
    except OSError:
        addresses = []
    if not addresses:
        return [FieldError(path=path, rule="notify_resolve",
                           message=f"`{path}` names host {host!r}, which does not resolve")], []
    for address in addresses:
        problem = forbidden(address)
        if problem:
            return [FieldError(path=path, rule="notify_address", message=(
                f"`{path}` names host {host!r}, which resolves to a {problem} address; "
                "webhooks may only go to public addresses"))], []
    return [], addresses


def check_job_url(url: str, allowed: tuple[str, ...], resolver: Resolver = resolve) -> None:
    """Raise JobValidationError when a job's own webhook URL is not allowed here."""
    problems = job_url_problems(url, allowed, resolver)
    if problems:
        raise JobValidationError(problems)


def message(event: NotifyEvent, *, job_id: str, name: str, status: str, counts: dict[str, int],
            gallery_url: str, manifest_url: str) -> dict:
    """The JSON body: `text` is what Slack and Teams incoming webhooks show; the rest is for
    Logic Apps and scripts (they ignore what they do not read)."""
    if event == "awaiting_review":
        headline = f"Job {name} ({job_id}) awaits review: {counts.get('ok', 0)} images to approve or reject."
    else:
        decided = ""
        if counts.get("approved") is not None:
            decided = (f" Approved {counts.get('approved', 0)}, rejected {counts.get('rejected', 0)}, "
                       f"undecided {counts.get('undecided', 0)}.")
        headline = f"Job {name} ({job_id}) ended {status}: {counts.get('ok', 0)} of {counts.get('total', 0)} images made.{decided}"
    return {
        "text": f"{headline} Gallery: {gallery_url}",
        "event": event, "job": job_id, "name": name, "status": status, "counts": counts,
        "links": {"gallery": gallery_url, "manifest": manifest_url},
    }


def send(url: str, body: dict, *, event: NotifyEvent, allowed: tuple[str, ...] | None,
         resolver: Resolver = resolve, forbidden: Callable[[str], str | None] = address_problem,
         attempts: int = ATTEMPTS, timeout: float = TIMEOUT_SECONDS, delays: tuple[float, ...] = RETRY_DELAYS,
         ca_certs: str | None = None) -> NotifyRecord:
    """POST `body` to `url`, retrying; never raises. `allowed` None: the operator's URL (used
    as set); else a job's URL, checked again against the rules before sending and sent to
    the address that was checked (`ca_certs`: the CAs its certificate may chain to, default
    the public ones)."""
    import requests  # the app's HTTP client (azure-core's too); imported where it is used
    import urllib3

    host = (urlsplit(url).hostname or "?").lower()

    def record(status, tries, http_status=None, error=None) -> NotifyRecord:
        return NotifyRecord(event=event, host=host, status=status, attempts=tries, http_status=http_status,
                            error=error, at=datetime.now(timezone.utc))

    address = None
    if allowed is not None:
        problems, addresses = checked_job_url(url, allowed, resolver, forbidden=forbidden)
        if problems:
            return record("refused", 0, error=problems[0].message)
        # Connect to the address just checked: a second lookup could answer another one
        # (DNS rebinding: a public address for the check, a private one for the connection).
        address = addresses[0]
    data = json.dumps(body).encode("utf-8")
    http_status, error = None, None
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            time.sleep(delays[min(attempt - 2, len(delays) - 1)] if delays else 0)
        try:
            if address is None:
                response = requests.post(url, data=data, headers={"Content-Type": "application/json"},
                                         timeout=timeout, allow_redirects=False)
                http_status, text = response.status_code, response.text
            else:
                http_status, text = post_to_address(url, address, data, timeout, ca_certs)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            http_status, error = None, type(exc).__name__  # never the URL: it may hold a token
            continue
        if 200 <= http_status < 300:
            return record("sent", attempt, http_status)
        error = f"HTTP {http_status}: {text[:MAX_RESPONSE_TEXT]}"
        if http_status < 500 and http_status not in (408, 429):
            return record("failed", attempt, http_status, error)  # a refusal or a redirect: asking again will not help
    return record("failed", attempts, http_status, error)


def post_to_address(url: str, address: str, data: bytes, timeout: float, ca_certs: str | None = None) -> tuple[int, str]:
    """POST JSON to https `url` over a connection to `address`, with no lookup of its host:
    SNI, the certificate's name check and the Host header still use the URL's host name.
    Never follows a redirect. Returns the status and the response's text."""
    import certifi
    import urllib3

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    pool = urllib3.HTTPSConnectionPool(
        address, port, server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs or certifi.where(), timeout=urllib3.Timeout(connect=timeout, read=timeout), retries=False)
    try:
        response = pool.urlopen(
            "POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=data, redirect=False,
            headers={"Host": host if port == 443 else f"{host}:{port}", "Content-Type": "application/json"})
        return response.status, response.data.decode("utf-8", "replace")
    finally:
        pool.close()
