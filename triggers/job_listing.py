"""Jobs newest first, page by page, read from the Durable management API.

Not a trigger (it registers nothing): `GET /api/jobs`, the gallery's list and the retention
timer read the task hub through it, so there is one way to page through instances.

Why not the SDK: `DurableOrchestrationClient.get_status_all` and `get_status_by`
(azure-functions-durable 1.7.0) send one request and return its body. The management API
answers at most `top` instances a page (100 when not given) and says where to go on in the
`x-ms-continuation-token` response header, which the SDK drops; each job's `render_batch`
sub-orchestrations (`{job}:{batch}`) fill the same pages, so past about fifty jobs the
newest vanished. `DurableInstances` reads the same API and follows the header. It calls the
binding's `rpcBaseUrl`, the host's loopback endpoint the SDK itself calls (no key, no
trip through the public front end and its sign-in): the SDK client keeps that URL private,
so the routes that list take the `durableClient` binding as its JSON text and read it with
the SDK's public `DurableOrchestrationBindings`.

## Newest first, across pages

The backend lists instances in an order of its own (Azure Storage by instance id, devhost
oldest first; the Durable Task Scheduler promises none), so a page cannot be "the next
`top` the backend returns", and sorting one backend page sorts only that page. A page is
defined by a cursor instead: the (createdTime, instance id) of the last job shown, which
the opaque `continuationToken` carries. The next page is the `top` jobs just before the
cursor in (createdTime, instance id) order, newest first. To find them without reading the
whole hub, `newest_jobs` reads windows of creation time back from the cursor, each with
`createdTimeFrom`/`createdTimeTo` and every page of it: the first an hour, each next one
four times longer (1 h, 4 h, 16 h, ... 4096 h, reaching back 227 days; past that one read
with no lower bound), until it has seen more than `top` matching jobs created after the
lower bound.

Why that is right: once the windows reach back to `t` (a whole second), every instance
created after `t` has been read, whatever order the backend used; a job not read was
created at or before `t`, so it sorts after all of them. Only jobs created strictly after
`t` count (one created exactly at `t` could fall on either side of the backend's bound;
the next window reads it again, and ids dedupe). The real API shows createdTime in whole
seconds (devhost in microseconds): bounds are whole seconds and ties are broken by
instance id, so the order is total and the same on every page. A job started after the
first page sorts before every cursor and shows on page one next time; a purged one drops
out. So paging shows each job once, with no gaps.

What it costs: a page reads every instance (sub-orchestrations included) created between
its cursor and its last window's lower bound: about its own jobs times (1 + batches), up
to four times that when the last window overshoots, in requests of 100 instances, plus
one request per empty window after a quiet spell (seven at most, then the open read).
Nothing is kept between requests. At most `MOST_INSTANCES_READ` instances are read for one
page (`ListingTooLarge` past it); retention (`IMAGEGEN_RETENTION_DAYS`) keeps a hub far
below that.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from azure.durable_functions.models import DurableOrchestrationBindings
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from pydantic import AwareDatetime, BaseModel, ConfigDict

from imagegen.core.field_errors import show_value
from imagegen.core.types import JOB_STATES, FieldError, JobValidationError
from triggers.jobs import JOB_STATES as RUNTIME_TO_STATE
from triggers.jobs import ORCHESTRATION, job_view

CONTINUATION_HEADER = "x-ms-continuation-token"
# What a last page may carry: no header, an empty one, or (DurableTask.AzureStorage before
# Azure/durabletask#372) the text "null" in base64.
NO_MORE_PAGES = frozenset({"", "null", "bnVsbA=="})
SOURCES = ("http", "blob", "schedule")
# A job's status in a user's words (triggers.jobs.job_state): JOB_STATES, and `suspended`.
STATUSES = (*JOB_STATES, "suspended")
MOST_TOP = 200
DEFAULT_TOP = 20
FIRST_WINDOW = timedelta(hours=1)
WIDENING = 4
# Past this look-back the rest of the hub is read in one request with no lower bound.
LONGEST_WINDOWED_LOOK_BACK = timedelta(days=730)
MOST_INSTANCES_READ = 50_000
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


class ListingTooLarge(RuntimeError):
    """One page would read more instances than `MOST_INSTANCES_READ`."""


class ManagementApiError(RuntimeError):
    """The Durable management API answered what it never should to a list or a purge."""


class InstanceStatus(BaseModel):
    """One instance as the management API lists it: the fields the jobs list reads."""

    model_config = ConfigDict(extra="ignore")

    name: str = ""
    instanceId: str
    runtimeStatus: str
    createdTime: AwareDatetime
    lastUpdatedTime: AwareDatetime | None = None
    input: Any = None
    output: Any = None
    customStatus: Any = None

    @property
    def is_job(self) -> bool:
        """A job, not one of its batches: `generate_batch` under an id that is no `{job}:{batch}`."""
        return self.name == ORCHESTRATION and ":" not in self.instanceId

    @property
    def order(self) -> tuple[datetime, str]:
        """Where it sorts: by created time, ties by instance id (the list shows it reversed)."""
        return self.createdTime, self.instanceId

    def view(self, base: str) -> dict[str, Any]:
        """The job as `GET /api/jobs/{id}` shows it (through the SDK's status model, as there)."""
        return job_view(DurableOrchestrationStatus.from_json(self.model_dump(mode="json")), base)


@dataclass(frozen=True)
class InstanceQuery:
    """One list request's filters, as the management API takes them."""

    created_from: datetime | None = None
    created_to: datetime | None = None
    runtime_statuses: tuple[str, ...] = ()
    id_prefix: str | None = None
    show_input: bool = True

    def params(self) -> dict[str, str]:
        params = {"showInput": "true" if self.show_input else "false"}
        if self.created_from is not None:
            params["createdTimeFrom"] = _iso(self.created_from)
        if self.created_to is not None:
            params["createdTimeTo"] = _iso(self.created_to)
        if self.runtime_statuses:
            params["runtimeStatus"] = ",".join(self.runtime_statuses)
        if self.id_prefix:
            params["instanceIdPrefix"] = self.id_prefix
        return params


class InstancePages(Protocol):
    """What listing needs of the task hub (`DurableInstances`, or a stand-in in tests)."""

    def pages(self, query: InstanceQuery) -> AsyncIterator[list[InstanceStatus]]: ...


class DurableInstances:
    """The management API's instances collection over HTTP: every page of a query, and purge."""

    def __init__(self, instances_url: str, session: aiohttp.ClientSession):
        self.instances_url = instances_url
        self.session = session

    @classmethod
    @asynccontextmanager
    async def open(cls, binding: str) -> AsyncIterator[DurableInstances]:
        """From the `durableClient` binding's JSON text, for the length of one request."""
        rpc_base_url = DurableOrchestrationBindings.from_json(binding).rpc_base_url
        if not rpc_base_url:
            raise ManagementApiError("the durableClient binding has no rpcBaseUrl (a Functions host before 2.x?)")
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            yield cls(f"{rpc_base_url.rstrip('/')}/instances/", session)

    async def pages(self, query: InstanceQuery) -> AsyncIterator[list[InstanceStatus]]:
        """Each page of `query`, following the continuation token to the last."""
        token, seen = "", set()
        while True:
            headers = {CONTINUATION_HEADER: token} if token else {}
            async with self.session.get(self.instances_url, params=query.params(), headers=headers) as response:
                if response.status != 200:
                    raise ManagementApiError(f"listing instances answered HTTP {response.status}: "
                                             f"{(await response.text())[:300]}")
                body = await response.json(content_type=None)
                token = response.headers.get(CONTINUATION_HEADER, "").strip()
            yield [InstanceStatus.model_validate(item) for item in body]
            if token in NO_MORE_PAGES:
                return
            if token in seen:  # a backend that hands out the same token twice would loop forever
                raise ManagementApiError(f"the management API repeated continuation token {token[:80]!r}")
            seen.add(token)

    async def purge(self, instance_id: str) -> bool:
        """Delete an ended instance's history (`DELETE instances/{id}`): True if it was deleted;
        False if it is gone already or has not ended (the API refuses: 404, or 412 in
        newer extensions)."""
        async with self.session.delete(self.instances_url + quote(instance_id, safe="")) as response:
            if response.status == 200:
                return True
            if response.status in (404, 412):
                return False
            raise ManagementApiError(f"purging {instance_id!r} answered HTTP {response.status}: "
                                     f"{(await response.text())[:300]}")


# ---- what a list request asks for ---------------------------------------------------------


def runtime_statuses_for(status: str) -> tuple[str, ...]:
    """The runtime statuses an instance can have while a user sees it as `status`
    (`triggers.jobs.job_state` read backwards), so the management API leaves the rest out.

    A job that ended shows its summary's status while Completed, and while still Running
    or ContinuedAsNew when its manifest is written and its last notification goes out."""
    runtimes = {runtime for runtime, state in RUNTIME_TO_STATE.items() if state == status}
    if status in ("completed", "partial", "rejected", "cancelled", "awaiting_review"):
        runtimes |= {"Completed", "Running", "ContinuedAsNew"}
    return tuple(sorted(runtimes))


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list shows: every one given matches (status in a user's words)."""

    status: str | None = None
    source: str | None = None
    name_prefix: str | None = None
    created_after: datetime | None = None

    def runtime_statuses(self) -> tuple[str, ...]:
        return runtime_statuses_for(self.status) if self.status else ()

    def matches(self, instance: InstanceStatus, view: Mapping[str, Any]) -> bool:
        return ((self.created_after is None or instance.createdTime >= self.created_after)
                and (self.status is None or view["status"] == self.status)
                and (self.source is None or view["source"] == self.source)
                and (self.name_prefix is None or str(view["name"]).startswith(self.name_prefix)))


class Cursor(BaseModel):
    """Where a page ended: the last job shown. A `continuationToken` is this, opaque."""

    model_config = ConfigDict(extra="forbid")

    created: AwareDatetime
    id: str

    @property
    def order(self) -> tuple[datetime, str]:
        return self.created, self.id

    def token(self) -> str:
        text = json.dumps({"created": self.created.isoformat(), "id": self.id}, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> Cursor:
        """The cursor a token carries; ValueError for anything `token()` did not make."""
        try:  # (binascii.Error, UnicodeDecodeError and pydantic's ValidationError are ValueErrors)
            cursor = cls.model_validate_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        except ValueError as error:
            raise ValueError(f"not a continuation token: {error}") from None
        if not EARLIEST <= cursor.created <= LATEST:
            raise ValueError(f"not a continuation token: its time {cursor.created.isoformat()} is out of range")
        return cursor


@dataclass(frozen=True)
class JobListRequest:
    """A list request, checked: `top` jobs after `after` (None: the newest), with `filters`."""

    top: int = DEFAULT_TOP
    after: Cursor | None = None
    filters: JobFilter = field(default_factory=JobFilter)


def list_request(params: Mapping[str, str], *, default_top: int = DEFAULT_TOP) -> JobListRequest:
    """`?top=&continuationToken=&status=&source=&namePrefix=&createdAfter=` read and checked;
    JobValidationError naming every bad parameter, its rule and its value."""
    errors: list[FieldError] = []

    def bad(path: str, rule: str, message: str) -> None:
        errors.append(FieldError(path=path, rule=rule, message=message))

    top = default_top
    text = params.get("top")
    if text is not None:
        if re.fullmatch(r"\s*[0-9]{1,4}\s*", text) and 1 <= int(text) <= MOST_TOP:
            top = int(text)
        else:
            bad("top", "range", f"`top` must be a whole number from 1 to {MOST_TOP}, got {show_value(text)}")
    after = None
    if token := params.get("continuationToken"):
        try:
            after = Cursor.from_token(token)
        except ValueError:
            bad("continuationToken", "token", "`continuationToken` must be the `continuationToken` of a "
                f"previous page, unchanged, got {show_value(token)}")
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        bad("status", "one_of", f"`status` must be one of {', '.join(STATUSES)}, got {show_value(status)}")
    source = params.get("source") or None
    if source is not None and source not in SOURCES:
        bad("source", "one_of", f"`source` must be one of {', '.join(SOURCES)}, got {show_value(source)}")
    created_after = None
    if text := params.get("createdAfter"):
        created_after = utc_moment(text)
        if created_after is None:
            bad("createdAfter", "iso_8601", "`createdAfter` must be an ISO 8601 date or date and time from "
                f"1970 to 9000 (2025-05-01 or 2025-05-01T12:00:00Z), got {show_value(text)}")
    if errors:
        raise JobValidationError(errors)
    filters = JobFilter(status=status, source=source, name_prefix=params.get("namePrefix") or None,
                        created_after=created_after)
    return JobListRequest(top=top, after=after, filters=filters)


# Times a list may start from: within these, a window's arithmetic never leaves datetime's range.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)


def utc_moment(text: str) -> datetime | None:
    """An ISO 8601 date or date and time (no zone: UTC, as the API's times), in UTC; None
    for anything else, or a time outside EARLIEST..LATEST."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    return moment if EARLIEST <= moment <= LATEST else None


# ---- newest first -------------------------------------------------------------------------


@dataclass
class JobPage:
    """One page: the jobs as `GET /api/jobs/{id}` shows them, newest first, and where the next
    page starts (None on the last)."""

    jobs: list[dict[str, Any]]
    next: Cursor | None
    instances_read: int = 0
    requests: int = 0


async def newest_jobs(hub: InstancePages, request: JobListRequest, *, base: str,
                      now: datetime | None = None) -> JobPage:
    """The page `request` asks for, newest first (the module's docstring says how, and why)."""
    top, after, filters = request.top, request.after, request.filters
    edge = _whole_second(after.created if after else (now or datetime.now(timezone.utc)))
    floor = _whole_second(filters.created_after) if filters.created_after else None
    # The first window is open above without a cursor (a clock behind the backend's loses
    # nothing) and ends a second past the cursor's second with one (the backend may keep
    # finer times than it shows); the client-side cursor check does the exact cut.
    upper = edge + timedelta(seconds=1) if after else None
    found: dict[str, tuple[InstanceStatus, dict[str, Any]]] = {}
    lower_bound, span, read, requests = edge, FIRST_WINDOW, 0, 0
    while True:
        lower: datetime | None = lower_bound - span
        last = False
        if floor is not None and lower is not None and lower <= floor:
            lower, last = floor, True
        elif edge - lower_bound + span > LONGEST_WINDOWED_LOOK_BACK:
            lower, last = None, True
        query = InstanceQuery(created_from=lower, created_to=upper, runtime_statuses=filters.runtime_statuses())
        async for page in hub.pages(query):
            requests += 1
            read += len(page)
            if read > MOST_INSTANCES_READ:
                raise ListingTooLarge(f"one page of jobs would read more than {MOST_INSTANCES_READ} instances")
            for instance in page:
                if (not instance.is_job or instance.instanceId in found
                        or (after is not None and instance.order >= after.order)):
                    continue
                view = instance.view(base)
                if filters.matches(instance, view):
                    found[instance.instanceId] = (instance, view)
        # Only jobs created after the lower bound are certain to sort before every job not yet read.
        settled = [item for item in found.values() if last or (lower is not None and item[0].createdTime > lower)]
        if last or len(settled) > top or lower is None:
            break
        upper, lower_bound, span = lower + timedelta(seconds=1), lower, span * WIDENING
    settled.sort(key=lambda item: item[0].order, reverse=True)
    shown = settled[:top]
    next_cursor = Cursor(created=shown[-1][0].createdTime, id=shown[-1][0].instanceId) if len(settled) > top else None
    return JobPage([view for _, view in shown], next_cursor, instances_read=read, requests=requests)


def _whole_second(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
