"""Keys under devhost: with --require-keys, `function`/`admin` routes and the management API
need the key; `anonymous` routes and the SDK client (on the loopback RPC port) do not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests

KEY = "test-key-not-a-secret"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, launch):
    host = launch(tmp_path_factory.mktemp("devhost-keys"), "--require-keys", env={"FUNCTIONS_KEY": KEY})
    yield host
    assert host.stop() == 0, host.log()


def test_function_level_route_needs_the_key(keyed):
    assert requests.get(f"{keyed.url}/api/secret", timeout=30).status_code == 401
    assert requests.get(f"{keyed.url}/api/secret", headers={"x-functions-key": "wrong"}, timeout=30).status_code == 401
    with_header = requests.get(f"{keyed.url}/api/secret", headers={"x-functions-key": KEY}, timeout=30)
    assert (with_header.status_code, with_header.text) == (200, "function level ok")
    assert requests.get(f"{keyed.url}/api/secret", params={"code": KEY}, timeout=30).status_code == 200


def test_admin_level_route_needs_the_key(keyed):
    assert requests.get(f"{keyed.url}/api/admin_only", timeout=30).status_code == 401
    assert requests.get(f"{keyed.url}/api/admin_only", params={"code": KEY}, timeout=30).text == "admin level ok"


def test_anonymous_route_stays_open(keyed):
    assert requests.get(f"{keyed.url}/api/items/3", timeout=30).json() == {"id": 3}


def test_management_api_needs_the_key_and_check_status_urls_carry_it(keyed):
    started = keyed.start("child", 2)  # anonymous starter; its SDK client calls the RPC port keylessly
    assert f"code={KEY}" in started["statusQueryGetUri"]
    bare = started["statusQueryGetUri"].split("?")[0]
    assert requests.get(bare, timeout=30).status_code == 401
    assert requests.get(bare.replace("/runtime/webhooks", ""), timeout=30).status_code == 401
    response = requests.get(started["statusQueryGetUri"], timeout=30)
    assert response.status_code in (200, 202)
    assert response.json()["instanceId"] == started["id"]
    assert keyed.wait_until(started["id"])["output"] == 4


def test_host_status_stays_open_for_readiness_probes(keyed):
    assert requests.get(f"{keyed.url}/admin/host/status", timeout=30).status_code == 200


def test_generated_key_when_none_is_set(tmp_path, launch):
    """--require-keys without FUNCTIONS_KEY: a key is generated into a private file, not logged."""
    app_dir = tmp_path / "app"
    shutil.copytree(Path(__file__).parent / "sample_app", app_dir,
                    ignore=shutil.ignore_patterns(".devhost", "__pycache__"))
    host = launch(tmp_path / "run", "--require-keys", app_dir=app_dir, env={"FUNCTIONS_KEY": ""})
    try:
        key_file = app_dir / ".devhost" / "function.key"
        key = key_file.read_text().strip()
        assert key and key not in host.log()
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        assert requests.get(f"{host.url}/api/secret", timeout=30).status_code == 401
        assert requests.get(f"{host.url}/api/secret", params={"code": key}, timeout=30).status_code == 200
    finally:
        assert host.stop() == 0, host.log()


def test_local_settings_and_host_json_are_applied(tmp_path, launch):
    """Values from local.settings.json reach the app without overriding the environment; a
    FUNCTIONS_KEY there turns keys on; host.json's empty routePrefix puts routes at the root."""
    app_dir = tmp_path / "app"
    shutil.copytree(Path(__file__).parent / "sample_app", app_dir,
                    ignore=shutil.ignore_patterns(".devhost", "__pycache__"))
    (app_dir / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": {
        "SAMPLE_FROM_FILE": "file", "SAMPLE_IN_BOTH": "file", "FUNCTIONS_KEY": "key-from-file"}}))
    host_json = json.loads((app_dir / "host.json").read_text())
    host_json["extensions"]["http"]["routePrefix"] = ""
    (app_dir / "host.json").write_text(json.dumps(host_json))
    host = launch(tmp_path / "run", app_dir=app_dir, env={"SAMPLE_IN_BOTH": "environment"})
    try:
        def setting(name):
            return requests.get(f"{host.url}/settings/{name}", timeout=30).json()[name]

        assert setting("SAMPLE_FROM_FILE") == "file"
        assert setting("SAMPLE_IN_BOTH") == "environment"
        assert requests.get(f"{host.url}/secret", timeout=30).status_code == 401
        assert requests.get(f"{host.url}/secret", params={"code": "key-from-file"}, timeout=30).status_code == 200
        assert requests.get(f"{host.url}/api/items/3", timeout=30).status_code == 404
    finally:
        assert host.stop() == 0, host.log()
