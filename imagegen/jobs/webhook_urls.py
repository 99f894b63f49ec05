"""Which webhook URLs a job may name: the deployment's rules against server-side request forgery.

A URL named in a job is a request this server makes on a user's behalf, so it is held to
the deployment's rules: `https` only, a host in `IMAGEGEN_NOTIFY_HOSTS`, and every address
that host resolves to public — never loopback, private, link-local (the cloud metadata
endpoint lives there), multicast or reserved. It is checked at submit (`imagegen.jobs.intake`),
so a bad URL refuses the job with field, rule and value, and again before each send
(`imagegen.service.notify`), because DNS answers change. The one look-up here is DNS.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

from imagegen.core.types import FieldError, JobValidationError

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (both families)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


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
