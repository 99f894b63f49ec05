"""Route templates as the Functions host reads them (in process: pure parsing, no server)."""

from __future__ import annotations

import pytest

from devhost.app_loader import FunctionInfo
from devhost.http_triggers import Route, RouteError, find, http_functions


@pytest.mark.parametrize("template, path, expected", [
    ("items/{id:int}", "/items/42", {"id": "42"}),
    ("items/{id:int}", "/items/4x", None),
    ("items/{id:min(10)}", "/items/9", None),
    ("items/{id:range(1,5)}", "/items/5", {"id": "5"}),
    ("items/{id:guid}", "/items/5f0c1a52-8f4e-4c39-9bb4-2f3e7d1d1a10", {"id": "5f0c1a52-8f4e-4c39-9bb4-2f3e7d1d1a10"}),
    ("items/{id:guid}", "/items/not-a-guid", None),
    ("flags/{on:bool}", "/flags/TRUE", {"on": "TRUE"}),
    ("names/{name:minlength(3)}", "/names/ab", None),
    ("names/{name:alpha:maxlength(3)}", "/names/abc", {"name": "abc"}),
    ("names/{name:regex(^a.c$)}", "/names/abc", {"name": "abc"}),
    ("greet/{name?}", "/greet", {}),
    ("greet/{name?}", "/greet/", {}),
    ("files/{*rest}", "/files/a/b.txt", {"rest": "a/b.txt"}),
    ("report/{year:int}.{format}", "/report/2024.pdf", {"year": "2024", "format": "pdf"}),
    ("Items/Special", "/items/special", {}),  # literals match case-insensitively, as in ASP.NET
    ("items/{id}", "/items/1/extra", None),
])
def test_route_matching(template, path, expected):
    assert Route(template).match(path) == expected


def test_unsupported_constraint_names_function_template_and_choices():
    with pytest.raises(RouteError) as raised:
        Route("items/{id:weird}", "get_item")
    message = str(raised.value)
    assert "`get_item`" in message and "items/{id:weird}" in message and "int" in message


def http_function(name: str, route: str) -> FunctionInfo:
    trigger = {"type": "httpTrigger", "name": "req", "route": route}
    return FunctionInfo(name=name, trigger_type="httpTrigger", trigger=trigger, bindings=(trigger,),
                        user_function=lambda req: None, is_async=False, function=None)


def test_specific_routes_answer_before_general_ones():
    # Declared most general first, as an app may do; the host must not answer in that order.
    routes = http_functions([http_function("catch_all", "{*all}"), http_function("get_item", "items/{id}"),
                             http_function("get_item_number", "items/{id:int}"),
                             http_function("new_item_form", "items/new")])
    assert [fn.name for fn, _ in find(routes, "/items/new")] == ["new_item_form", "get_item", "catch_all"]
    assert [fn.name for fn, _ in find(routes, "/items/42")] == ["get_item_number", "get_item", "catch_all"]
    assert [fn.name for fn, _ in find(routes, "/other")] == ["catch_all"]
