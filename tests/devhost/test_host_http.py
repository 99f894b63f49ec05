"""HTTP triggers under devhost: routes, parameters, constraints, methods, outputs, failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def get(devhost, path: str, **kwargs) -> requests.Response:
    return requests.get(devhost.url + path, timeout=30, **kwargs)


def test_start_prints_each_function_with_its_trigger_and_url(devhost):
    log = devhost.log()
    assert f"item_by_id: [GET] {devhost.url}/api/items/{{id:int}}" in log
    assert "fan_out_fan_in: orchestrationTrigger" in log
    assert f"devhost ready on {devhost.url}" in log


def test_route_parameter_with_int_constraint(devhost):
    assert get(devhost, "/api/items/12").json() == {"id": 12}


def test_literal_route_wins_over_parameters(devhost):
    assert get(devhost, "/api/items/special").json() == {"special": True}


def test_constraint_picks_the_route_and_rejects_what_matches_none(devhost):
    assert get(devhost, "/api/items/abc").json() == {"name": "abc", "method": "GET"}
    response = get(devhost, "/api/items/12abc")  # neither int nor alpha
    assert response.status_code == 404
    assert "no function at GET /api/items/12abc" in response.json()["error"]


def test_catch_all_and_optional_parameters(devhost):
    assert get(devhost, "/api/files/a/b/c.txt").json() == {"path": "a/b/c.txt"}
    assert get(devhost, "/api/files").json() == {"path": ""}
    assert get(devhost, "/api/greet/ada").text == "hello, ada"
    assert get(devhost, "/api/greet").text == "hello, world"


def test_methods_are_enforced(devhost):
    assert requests.delete(devhost.url + "/api/items/abc", timeout=30).json()["method"] == "DELETE"
    response = requests.post(devhost.url + "/api/items/12", timeout=30)
    assert response.status_code == 405
    assert response.json()["allowed"] == ["GET"]


def test_request_carries_url_headers_query_and_body(devhost):
    response = requests.put(devhost.url + "/api/echo?colour=red&size=2", data=b"the body",
                            headers={"x-test": "header value"}, timeout=30)
    assert response.json() == {
        "method": "PUT", "url": f"{devhost.url}/api/echo?colour=red&size=2", "header": "header value",
        "params": {"colour": "red", "size": "2"}, "body": "the body"}


def test_named_http_output_binding_is_the_response(devhost):
    response = get(devhost, "/api/named")
    assert (response.status_code, response.text) == (201, "set on the named output")


def test_async_function_and_plain_string_return(devhost):
    assert get(devhost, "/api/slow_async").text == "async ok"
    assert get(devhost, "/api/greet").headers["Content-Type"].startswith("text/plain")


def test_function_that_raises_returns_500_and_the_host_stays_up(devhost):
    response = get(devhost, "/api/crash")
    assert response.status_code == 500
    # As the Functions host: the client learns which function failed, never what it raised.
    assert "crash" in response.json()["error"]
    assert "raised on purpose" not in response.text and "RuntimeError" not in response.text
    assert get(devhost, "/admin/host/status").status_code == 200
    assert get(devhost, "/api/items/1").json() == {"id": 1}


def test_unknown_route_is_404_json(devhost):
    for path in ("/api/nothing/here", "/not-under-the-prefix"):
        response = get(devhost, path)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert path in response.json()["error"]


def test_keys_are_not_required_by_default(devhost):
    assert get(devhost, "/api/secret").text == "function level ok"
    assert get(devhost, "/api/admin_only").text == "admin level ok"


def test_malformed_app_stops_start_with_traceback_and_exit_1(tmp_path):
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\nimport module_that_does_not_exist\napp = func.FunctionApp()\n")
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(tmp_path), "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ModuleNotFoundError: No module named 'module_that_does_not_exist'" in result.stderr


def test_app_without_app_object_is_refused(tmp_path):
    (tmp_path / "function_app.py").write_text("x = 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(tmp_path), "--port", "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "must define a module-level `app`" in result.stderr


def test_function_asking_for_context_gets_one(devhost):
    assert get(devhost, "/api/whoami").json() == {"function": "whoami", "has_invocation_id": True}
