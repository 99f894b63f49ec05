"""HTTP-triggered functions: route templates, auth levels, and `func.HttpRequest` / `HttpResponse`.

Routes follow the Functions (ASP.NET) template syntax: `items/{id}`, optional `{id?}`,
constraints `{id:int}` (int, long, alpha, bool, guid, float, double, decimal, datetime,
min(n), max(n), range(a,b), length(n), minlength(n), maxlength(n), regex(...)), and a
catch-all `{*rest}`. Literal segments win over parameters, constrained over unconstrained,
catch-alls match last, as in the real host.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from devhost.app_loader import FunctionInfo

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")
KEY_HEADER = "x-functions-key"


class RouteError(ValueError):
    """A route template devhost cannot parse; names the function and the template."""


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[str, ...] = ()
    optional: bool = False
    catch_all: bool = False


def _check_number(kind, value: str) -> bool:
    try:
        kind(value)
        return True
    except ValueError:
        return False


def constraint_holds(constraint: str, value: str) -> bool:
    """Whether one route value satisfies one constraint (`int`, `min(3)`, `regex(^a)` ...)."""
    name, _, argument = constraint.partition("(")
    argument = argument[:-1] if argument.endswith(")") else argument
    name = name.lower()
    if name in ("int", "long"):
        return re.fullmatch(r"-?\d+", value) is not None
    if name == "alpha":
        return re.fullmatch(r"[A-Za-z]+", value) is not None
    if name == "bool":
        return value.lower() in ("true", "false")
    if name == "guid":
        return _check_number(uuid.UUID, value)
    if name in ("float", "double", "decimal"):
        return _check_number(float, value)
    if name == "datetime":
        return _check_number(datetime.fromisoformat, value)
    if name in ("min", "max", "range"):
        if re.fullmatch(r"-?\d+", value) is None:
            return False
        bounds = [int(part) for part in argument.split(",")]
        number = int(value)
        if name == "min":
            return number >= bounds[0]
        if name == "max":
            return number <= bounds[0]
        return bounds[0] <= number <= bounds[1]
    if name in ("length", "minlength", "maxlength"):
        bounds = [int(part) for part in argument.split(",")]
        if name == "minlength":
            return len(value) >= bounds[0]
        if name == "maxlength":
            return len(value) <= bounds[0]
        return len(value) == bounds[0] if len(bounds) == 1 else bounds[0] <= len(value) <= bounds[1]
    if name == "regex":
        return re.search(argument, value) is not None
    raise RouteError(f"route constraint `{constraint}` is not supported")


KNOWN_CONSTRAINTS = {"int", "long", "alpha", "bool", "guid", "float", "double", "decimal", "datetime",
                     "min", "max", "range", "length", "minlength", "maxlength", "regex"}


def _parse_parameter(text: str, function: str, template: str) -> Parameter:
    catch_all = text.startswith("*")
    text = text.lstrip("*")
    optional = text.endswith("?")
    text = text.rstrip("?")
    name, *constraints = text.split(":")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteError(f"function `{function}`: route `{template}` has a bad parameter name {name!r}")
    for constraint in constraints:
        if constraint.partition("(")[0].lower() not in KNOWN_CONSTRAINTS:
            raise RouteError(f"function `{function}`: route `{template}` uses constraint `{constraint}`, "
                             f"which devhost does not support (supported: {', '.join(sorted(KNOWN_CONSTRAINTS))})")
    return Parameter(name, tuple(constraints), optional, catch_all)


class Route:
    """One compiled route template: matches a path and yields its route parameters."""

    def __init__(self, template: str, function: str = ""):
        self.template = template.strip("/")
        self.parameters: list[Parameter] = []
        rank: list[int] = []
        pattern = ""
        for segment in filter(None, self.template.split("/")):
            whole = re.fullmatch(r"\{([^{}]*)\}", segment)
            if whole:  # the whole segment is one parameter: it may be left out, slash included
                parameter = self._add(whole.group(1), function)
                group = f"(?P<{parameter.name}>{'.*' if parameter.catch_all else '[^/]+'})"
                loose = parameter.optional or parameter.catch_all
                pattern += f"(?:/{group})?" if loose else f"/{group}"
                rank.append(self._rank(parameter))
                continue
            segment_pattern, segment_rank = "", 0
            for piece in re.split(r"(\{[^{}]*\})", segment):
                if piece.startswith("{"):
                    parameter = self._add(piece[1:-1], function)
                    segment_pattern += f"(?P<{parameter.name}>[^/]+?)" + ("?" if parameter.optional else "")
                    segment_rank = max(segment_rank, self._rank(parameter))
                else:
                    segment_pattern += re.escape(piece)
            pattern += f"/{segment_pattern}"
            rank.append(segment_rank)
        self.rank = tuple(rank)
        self._regex = re.compile(f"^{pattern}/?$", re.IGNORECASE) if pattern else re.compile("^/?$")

    def _add(self, text: str, function: str) -> Parameter:
        parameter = _parse_parameter(text, function, self.template)
        self.parameters.append(parameter)
        return parameter

    @staticmethod
    def _rank(parameter: Parameter) -> int:
        if parameter.catch_all:
            return 4
        if parameter.optional:
            return 3
        return 1 if parameter.constraints else 2

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters if `path` (no prefix, leading slash) matches, else None."""
        found = self._regex.match(path)
        if found is None:
            return None
        values = {name: value for name, value in found.groupdict().items() if value is not None and value != ""}
        for parameter in self.parameters:
            value = values.get(parameter.name)
            if value is None:
                if not (parameter.optional or parameter.catch_all):
                    return None
                continue
            if not all(constraint_holds(constraint, value) for constraint in parameter.constraints):
                return None
        return values


@dataclass
class HttpFunction:
    info: FunctionInfo
    route: Route
    methods: tuple[str, ...]
    auth_level: str  # anonymous | function | admin

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def binding_name(self) -> str:
        return self.info.trigger["name"]

    @property
    def output_binding(self) -> str | None:
        """Name of the `http` output binding: `$return` or a `func.Out` parameter."""
        names = [binding["name"] for binding in self.info.bindings_of_type("http")]
        named = [name for name in names if name != "$return"]  # a `func.Out` wins over `$return`
        return (named or names or [None])[0]


def http_functions(functions: list[FunctionInfo]) -> list[HttpFunction]:
    """Every httpTrigger function with its compiled route, most specific route first."""
    result = []
    for info in functions:
        if info.trigger_type != "httpTrigger":
            continue
        methods = tuple(method.upper() for method in (info.trigger.get("methods") or ALL_METHODS))
        template = info.trigger.get("route") or info.name
        auth_level = str(info.trigger.get("authLevel") or "function").lower()
        result.append(HttpFunction(info, Route(template, info.name), methods, auth_level))
    # Lower rank = more specific; a longer literal route sorts before a shorter one of equal rank.
    result.sort(key=lambda fn: (fn.route.rank, -len(fn.route.rank)))
    return result


def find(routes: list[HttpFunction], path: str) -> list[tuple[HttpFunction, dict[str, str]]]:
    """All functions whose route matches `path`, most specific first."""
    matches = []
    for route in routes:
        params = route.route.match(path)
        if params is not None:
            matches.append((route, params))
    return matches


def key_given(request: web.Request) -> str | None:
    return request.headers.get(KEY_HEADER) or request.query.get("code")


def authorized(request: web.Request, auth_level: str, key: str | None) -> bool:
    """`anonymous` is always open; `function` and `admin` need the key when keys are on."""
    if key is None or auth_level == "anonymous":
        return True
    given = key_given(request)
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


async def to_http_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    """The `func.HttpRequest` a function sees: full URL, headers, query, route params and body."""
    body = await request.read()
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        params={key: request.query[key] for key in request.query.keys()},
        route_params=route_params,
        body=body,
    )


def to_web_response(value: Any) -> web.Response:
    """Turn what the function returned (or set on its `http` output) into an aiohttp response."""
    if isinstance(value, func.HttpResponse):
        headers = CIMultiDict(value.headers.items())
        if "Content-Type" not in headers:  # an explicit header wins over `mimetype`
            content_type = value.mimetype or "text/plain"
            if value.charset and content_type.startswith("text/"):
                content_type = f"{content_type}; charset={value.charset}"
            headers["Content-Type"] = content_type
        return web.Response(status=value.status_code, body=value.get_body(), headers=headers)
    if value is None:
        return web.Response(status=204)
    if isinstance(value, bytes):
        return web.Response(status=200, body=value, content_type="application/octet-stream")
    if isinstance(value, str):
        return web.Response(status=200, text=value, content_type="text/plain")
    return web.Response(status=200, text=json.dumps(value), content_type="application/json")


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)
