"""Webhook notifications: a small JSON message when a job awaits review and when it ends.

A URL named in a job is a request this server makes on a user's behalf, so it is held to
the deployment's rules (`imagegen.jobs.webhook_urls`): checked at submit, and again before
each send here, because DNS answers change. The connection goes to the address that was
checked, and redirects are never followed (a listed host could redirect to a private one).

`IMAGEGEN_NOTIFY_URL` is the operator's own setting, not a user's: it is used as set (in
Azure it is an https Teams, Slack or Logic Apps webhook; locally it may be a receiver on
127.0.0.1).

Sending never raises: it tries a few times with a short timeout each and returns what
happened, which the manifest records. A failing webhook never fails or holds up a job.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlsplit

from imagegen.jobs.webhook_urls import Resolver, address_problem, checked_job_url, resolve
from imagegen.records.notifications import NotifyEvent, NotifyRecord

ATTEMPTS = 3  # a webhook that fails three times, a few seconds apart, is down
TIMEOUT_SECONDS = 10  # per attempt: connect and read
RETRY_DELAYS = (1.0, 3.0)  # seconds before the 2nd and 3rd attempt
MAX_RESPONSE_TEXT = 200  # of an error response kept in the manifest


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
