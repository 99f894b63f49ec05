"""The Durable Functions HTTP management API, served from the durable engine.

The same handlers answer on two prefixes, as in the real host: `/durabletask/` (the SDK
client's `rpcBaseUrl`) and the public `/runtime/webhooks/durabletask/` (the URLs in a
check-status response). Status codes follow the extension: 202 while an instance runs and
200 once it is terminal, 404 unknown, 410 not running (events, terminate), 409 id in use,
400 bad input with a message that names the field.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

from devhost.client_binding import management_urls
from devhost.durable import core
from devhost.durable.errors import InstanceExists, InstanceNotFound, InstanceNotRunning, UnknownOrchestrator

PREFIXES = ("/runtime/webhooks/durabletask", "/durabletask")
RUNTIME_STATUSES = ("Pending", "Running", "Completed", "ContinuedAsNew", "Failed", "Terminated", "Suspended")
TERMINAL = frozenset(core.TERMINAL_STATUSES)
CONTINUATION_HEADER = "x-ms-continuation-token"
DEFAULT_PAGE_SIZE = 100  # instances per list page when `top` is not given, as in the extension


class BadRequest(Exception):
    """A request the API refuses with 400; the message names the field and the value."""


def error(status: int, message: str) -> web.Response:
    # `ExceptionMessage` is the field the SDK client reads from a 400 on start.
    body = {"error": message}
    if status == 400:
        body["ExceptionMessage"] = message
    return web.json_response(body, status=status)


def input_json(raw: bytes, field: str) -> str | None:
    """The JSON text of a start input or event payload, or None for an empty body.

    The SDK client double-encodes (it posts the JSON text as a JSON string literal), a plain
    HTTP client posts the JSON value itself; both mean the same input. The one ambiguity: a
    posted string whose text is itself JSON (`"5"`) is read as that JSON value (5).
    """
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error_:
        raise BadRequest(f"the request body ({field}) must be JSON: {error_}") from None
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except json.JSONDecodeError:
            return json.dumps(value)
    return json.dumps(value)


def query_datetime(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"`{name}` must be an ISO-8601 date and time, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def query_statuses(request: web.Request) -> list[str] | None:
    text = request.query.get("runtimeStatus")
    if not text:
        return None
    statuses = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = next((status for status in RUNTIME_STATUSES if status.lower() == item.lower()), None)
        if match is None:
            raise BadRequest(f"`runtimeStatus` must be among {', '.join(RUNTIME_STATUSES)}, got {item!r}")
        statuses.append(match)
    return statuses


def query_top(request: web.Request) -> int | None:
    text = request.query.get("top")
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise BadRequest(f"`top` must be a whole number >= 1, got {text!r}")
    return int(text)


class ManagementApi:
    """Handlers over one `DurableEngine`; `key()` is the function key when keys are required."""

    def __init__(self, engine: Any, task_hub: str, key: Callable[[], str | None]):
        self.engine = engine
        self.task_hub = task_hub
        self.key = key

    def routes(self) -> list[web.RouteDef]:
        table = []
        for prefix in PREFIXES:
            table += [
                web.post(prefix + "/orchestrators/{name}", self.start),
                web.post(prefix + "/orchestrators/{name}/{instance_id}", self.start),
                web.get(prefix + "/instances", self.list),
                web.get(prefix + "/instances/", self.list),
                web.delete(prefix + "/instances", self.purge_by),
                web.delete(prefix + "/instances/", self.purge_by),
                web.get(prefix + "/instances/{instance_id}", self.status),
                web.delete(prefix + "/instances/{instance_id}", self.purge),
                # Operation names are case-insensitive, as in the extension (`RaiseEvent`, `SUSPEND`).
                web.post(prefix + "/instances/{instance_id}/{operation}/{event}", self.raise_event),
                web.post(prefix + "/instances/{instance_id}/{operation}", self.operate),
                web.route("*", prefix + "/entities{tail:.*}", self.not_supported),
                web.route("*", prefix + "/{tail:.*}", self.unknown),
            ]
        return table

    def payload(self, request: web.Request, instance_id: str) -> dict[str, str]:
        origin = f"{request.scheme}://{request.host}"
        return management_urls(origin, instance_id, self.task_hub, key=self.key())

    def accepted(self, request: web.Request, instance_id: str, body: Any = None) -> web.Response:
        payload = self.payload(request, instance_id)
        return web.json_response(payload if body is None else body, status=202, headers={
            "Location": payload["statusQueryGetUri"], "Retry-After": "1"})

    async def start(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            data = input_json(await request.read(), "orchestration input")
            instance_id = await self.engine.start_new(name, request.match_info.get("instance_id"), data)
        except BadRequest as problem:
            return error(400, str(problem))
        except UnknownOrchestrator as problem:
            return error(400, str(problem))
        except InstanceExists as problem:
            return error(409, str(problem))
        timeout = request.query.get("timeout")
        if timeout:  # createAndWaitOnNewInstancePostUri: answer with the output if it ends in time
            if not timeout.isdigit():
                return error(400, f"`timeout` must be a whole number of seconds, got {timeout!r}")
            status = await self.engine.wait_for(instance_id, float(timeout))
            if status and status.get("runtimeStatus") in TERMINAL:
                return web.json_response(status.get("output"), status=200)
        return self.accepted(request, instance_id)

    async def status(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        status = await self.engine.get_status(
            instance_id,
            show_history=query_bool(request, "showHistory"),
            show_history_output=query_bool(request, "showHistoryOutput"),
            show_input=query_bool(request, "showInput") or "showInput" not in request.query,
        )
        if status is None:
            return error(404, f"no instance with id `{instance_id}`")
        if status.get("runtimeStatus") == "Failed" and query_bool(request, "returnInternalServerErrorOnFailure"):
            return web.json_response(status, status=500)  # as documented: asked for, a failure is a 500
        if status.get("runtimeStatus") in TERMINAL:
            return web.json_response(status, status=200)
        return self.accepted(request, instance_id, status)

    async def list(self, request: web.Request) -> web.Response:
        try:
            instances, token = await self.engine.list_instances(
                created_from=query_datetime(request, "createdTimeFrom"),
                created_to=query_datetime(request, "createdTimeTo"),
                statuses=query_statuses(request),
                prefix=request.query.get("instanceIdPrefix") or None,
                top=query_top(request) or DEFAULT_PAGE_SIZE,
                continuation=request.headers.get(CONTINUATION_HEADER) or None,
            )
        except BadRequest as problem:
            return error(400, str(problem))
        except ValueError as problem:  # the engine refuses a continuation token it did not issue
            return error(400, f"`{CONTINUATION_HEADER}` is not valid: {problem}")
        if request.query.get("showInput", "").lower() == "false":
            instances = [{key: value for key, value in item.items() if key != "input"} for item in instances]
        headers = {CONTINUATION_HEADER: token} if token else {}
        return web.json_response(instances, headers=headers)

    async def purge(self, request: web.Request) -> web.Response:
        instance_id = request.match_info["instance_id"]
        status = await self.engine.get_status(instance_id, show_input=False)
        if status is not None and status.get("runtimeStatus") not in TERMINAL:
            # The extension purges only instances that ended; a running one is left as it is.
            return error(404, f"instance `{instance_id}` is {status.get('runtimeStatus')}: only completed, "
                              "failed or terminated instances can be purged")
        deleted = await self.engine.purge(instance_id)
        if not deleted:
            return error(404, f"no instance with id `{instance_id}`")
        return web.json_response({"instancesDeleted": deleted})

    async def purge_by(self, request: web.Request) -> web.Response:
        try:
            created_from = query_datetime(request, "createdTimeFrom")
            if created_from is None:
                # Purging everything by accident is too easy without it; the SDK requires it too.
                raise BadRequest("`createdTimeFrom` is required to purge by filter")
            deleted = await self.engine.purge_by(
                created_from=created_from, created_to=query_datetime(request, "createdTimeTo"),
                statuses=query_statuses(request))
        except BadRequest as problem:
            return error(400, str(problem))
        if not deleted:
            return error(404, "no instance matched the filter")
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        instance_id, event = request.match_info["instance_id"], request.match_info["event"]
        if request.match_info.get("operation", "raiseEvent").lower() != "raiseevent":
            return await self.unknown(request)
        body = await request.read()
        if body.strip() and request.content_type.lower() != "application/json":
            return error(400, f"event data must be JSON sent as application/json, got {request.content_type!r}")
        try:
            data = input_json(body, "event data")
            await self.engine.raise_event(instance_id, event, data)
        except BadRequest as problem:
            return error(400, str(problem))
        except InstanceNotFound as problem:
            return error(404, str(problem))
        except InstanceNotRunning as problem:
            return error(410, f"{problem}: it cannot take event '{event}'")
        return web.Response(status=202)

    async def operate(self, request: web.Request) -> web.Response:
        instance_id, operation = request.match_info["instance_id"], request.match_info["operation"].lower()
        reason = request.query.get("reason", "")
        try:
            if operation in ("terminate", "suspend", "resume"):
                await getattr(self.engine, operation)(instance_id, reason)
                return web.Response(status=202)
            if operation == "restart":
                new_id = await self.engine.restart(
                    instance_id, request.query.get("restartWithNewInstanceId", "true").lower() != "false")
                # The SDK client reads the new id from the body as a JSON string.
                return web.json_response(new_id, status=202, headers={
                    "Location": self.payload(request, new_id)["statusQueryGetUri"]})
            if operation == "rewind":
                return error(501, "rewind is not supported by devhost (it is deprecated in Durable Functions)")
        except InstanceNotFound as problem:
            return error(404, str(problem))
        except InstanceNotRunning as problem:
            return error(410, f"cannot {operation}: {problem}")
        except InstanceExists as problem:  # restart in place of an instance still running
            return error(409, f"cannot {operation}: {problem}")
        return error(404, f"unknown instance operation `{operation}` (known: terminate, suspend, resume, "
                          f"restart, rewind, raiseEvent)")

    async def not_supported(self, request: web.Request) -> web.Response:
        return error(501, "durable entities are not supported by devhost")

    async def unknown(self, request: web.Request) -> web.Response:
        return error(404, f"no Durable management API route for {request.method} {request.path}")
