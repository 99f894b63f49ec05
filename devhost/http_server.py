"""The aiohttp web server: admin status, the Durable management API and the app's HTTP functions.

One aiohttp application listens on two sockets, as the real host does: the public port
(default 7071) and a loopback-only RPC port that the SDK client inside the host calls
(`rpcBaseUrl`). The RPC port serves only `/durabletask/...` and needs no key; the public
port applies auth levels when keys are on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aiohttp import web

from devhost import http_triggers
from devhost.http_triggers import HttpFunction, authorized, json_error
from devhost.invoke import FunctionFailed, Invoker
from devhost.management_api import PREFIXES, ManagementApi

log = logging.getLogger("devhost.http")

RPC_PREFIX = "/durabletask/"


@dataclass
class ServerConfig:
    route_prefix: str  # "api", or "" for routes at the root
    key: str | None  # None: every route is open (Core Tools' default)
    public_port: int = 0  # filled in once bound
    rpc_port: int = 0
    started: float = field(default_factory=time.time)


def _arrival_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if sockname else None


def build_app(config: ServerConfig, routes: list[HttpFunction], invoker: Invoker,
              management: ManagementApi) -> web.Application:
    @web.middleware
    async def gatekeeper(request: web.Request, handler):
        on_rpc_port = config.rpc_port and _arrival_port(request) == config.rpc_port
        if on_rpc_port:
            if not request.path.startswith(RPC_PREFIX):
                return json_error(404, f"the RPC port serves only {RPC_PREFIX}..., not {request.path}")
        elif request.path.startswith(PREFIXES) and not authorized(request, "admin", config.key):
            # The management API is system-level: it needs the key whenever keys are on.
            return json_error(401, "the Durable management API needs the key in `x-functions-key` or `?code=`")
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001 - a host bug answers 500, it never stops the server
            log.exception("request %s %s failed", request.method, request.path)
            # The exception's text stays in the log: it may name paths, keys or internals.
            return json_error(500, f"devhost failed to handle {request.method} {request.path}; see the host log")

    async def host_status(request: web.Request) -> web.Response:
        return web.json_response({
            "state": "Running", "id": "devhost", "processUptime": int((time.time() - config.started) * 1000),
        })

    async def list_functions(request: web.Request) -> web.Response:
        if not authorized(request, "admin", config.key):
            return json_error(401, "/admin/functions needs the key in `x-functions-key` or `?code=`")
        return web.json_response([
            {"name": route.name, "route": route.route.template, "methods": list(route.methods),
             "authLevel": route.auth_level} for route in routes])

    async def call_function(request: web.Request) -> web.Response:
        prefix = f"/{config.route_prefix}" if config.route_prefix else ""
        path = request.path
        if prefix and not (path.lower() == prefix.lower() or path.lower().startswith(prefix.lower() + "/")):
            return json_error(404, f"no function at {request.method} {path}")
        matches = http_triggers.find(routes, path[len(prefix):] or "/")
        if not matches:
            return json_error(404, f"no function at {request.method} {path}")
        chosen = next(((fn, params) for fn, params in matches if request.method in fn.methods), None)
        if chosen is None:
            allowed = sorted({method for fn, _ in matches for method in fn.methods})
            return json_error(405, f"{path} does not accept {request.method}; it accepts {', '.join(allowed)}",
                              allowed=allowed)
        function, params = chosen
        if not authorized(request, function.auth_level, config.key):
            return json_error(401, f"function `{function.name}` has auth level `{function.auth_level}`: "
                                   f"send the key in `x-functions-key` or `?code=`")
        http_request = await http_triggers.to_http_request(request, params)
        try:
            invocation = await invoker.invoke(function.name, {function.binding_name: http_request})
        except FunctionFailed as failure:
            # As the Functions host: the invoker logged the exception; the client gets only the status.
            return json_error(500, f"function `{failure.function_name}` failed; see the host log")
        output = function.output_binding
        value = invocation.result if output in (None, "$return") else invocation.outputs.get(output)
        return http_triggers.to_web_response(value)

    app = web.Application(middlewares=[gatekeeper], client_max_size=100 * 1024 * 1024)
    app.add_routes([
        web.get("/admin/host/status", host_status),
        web.get("/admin/functions", list_functions),
        *management.routes(),
        web.route("*", "/{tail:.*}", call_function),
    ])
    return app


class HttpServer:
    """Runs the application on the public and RPC sockets until `stop()`."""

    def __init__(self, app: web.Application, config: ServerConfig, bind: str = "127.0.0.1"):
        self.app = app
        self.config = config
        self.bind = bind
        self._runner: web.AppRunner | None = None

    async def start(self, public_port: int, rpc_port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        public = web.TCPSite(self._runner, self.bind, public_port, reuse_address=True)
        await public.start()
        # The RPC socket is loopback-only whatever --bind says: it carries unauthenticated calls.
        rpc = web.TCPSite(self._runner, "127.0.0.1", rpc_port, reuse_address=True)
        await rpc.start()
        # `addresses` lists the bound sockets in the order the sites started: public, then RPC.
        public_address, rpc_address = self._runner.addresses[:2]
        self.config.public_port, self.config.rpc_port = public_address[1], rpc_address[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

