"""`IMAGEGEN_SIGN_IN=entra`: built-in authentication guards the routes, so the Functions host
asks for no function key there (a browser sends none); off, the routes need one as before.
Routes sign-in does not guard keep their own rule: the Foundry route still needs a key."""

from __future__ import annotations

import pytest
import requests

from tests.app.conftest import launch_app

KEY = "test-key-not-a-secret"
BEHIND_SIGN_IN = ("/api/jobs", "/api/gallery")


@pytest.fixture(scope="module", params=["entra", "off"])
def keyed_app(request, tmp_path_factory, storage_connection_string):
    host = launch_app(tmp_path_factory, storage_connection_string, args=("--require-keys",),
                      FUNCTIONS_KEY=KEY, IMAGEGEN_SIGN_IN=request.param)
    yield request.param, host
    host.stop()


@pytest.mark.parametrize("path", BEHIND_SIGN_IN)
def test_routes_behind_sign_in_need_a_function_key_only_without_sign_in(keyed_app, path):
    sign_in, host = keyed_app
    bare = requests.get(f"{host.url}{path}", timeout=60)
    keyed = requests.get(f"{host.url}{path}", headers={"x-functions-key": KEY}, timeout=60)
    assert keyed.status_code == 200, keyed.text
    assert bare.status_code == (200 if sign_in == "entra" else 401), bare.text


def test_routes_outside_sign_in_keep_their_own_rule(keyed_app):
    _, host = keyed_app
    assert requests.get(f"{host.url}/api/health", timeout=60).status_code == 200
    # No IMAGEGEN_API_KEY: the Foundry route, which sign-in does not guard, keeps function keys.
    foundry = requests.post(f"{host.url}/api/images/generations", json={"prompt": "a kite"}, timeout=60)
    assert foundry.status_code == 401
