"""Every way `imagegen` fails prints ONE line on stderr saying what to do — never a
traceback — and exits with the code the README documents (1 error, 2 usage, 130
interrupted). The real command runs as a subprocess, against a scripted API
(tests/imagegen/fake_api.py; the command: tests/cli_command.py) or none at all."""

from __future__ import annotations

import signal
import socket

import pytest

from tests.cli_command import cli_env, error_line, imagegen, start_imagegen
from tests.imagegen.fake_api import FakeApi, job
from tests.waiting import wait_until

INVALID_JOB = {"title": "Invalid job", "status": 400, "detail": "The job has 2 problems.",
               "errors": [{"path": "variants.steps", "rule": "range", "message": "must be from 1 to 150, got 0"},
                          {"path": "prompts[0].text", "rule": "required", "message": "is required"}]}


@pytest.fixture
def api():
    running = FakeApi(
        jobs={"endless": [job("endless", "running")]},
        problems={
            "/api/jobs/secret": (401, {"title": "Unauthorized", "status": 401, "detail": "sign in first"}),
            "/api/jobs/crash": (500, {"title": "Internal error", "status": 500,
                                      "detail": "The server could not handle this request; the failure was logged."}),
            "/api/jobs/proxy": (502, "<html>\n<body><h1>502 Bad Gateway</h1>\n</body></html>"),
            "/api/jobs/page": (200, "<html><body>a web page, not the app</body></html>"),
            "/api/jobs/odd": (200, {"id": "odd", "state": "a JSON object the CLI does not expect"}),
        },
        hanging=("/api/jobs/stuck",))
    yield running
    running.close()


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def failed(done, code: int, *words: str) -> str:
    """The command's one error line, checked for its exit code and words."""
    line = error_line(done.stderr)
    assert done.returncode == code, (done.returncode, line)
    for word in words:
        assert word in line, line
    return line


def test_drop_without_storage_or_url_names_the_settings_to_set(tmp_path):
    (tmp_path / "kites.txt").write_text("a kite over the sea\n")
    line = failed(imagegen("drop", str(tmp_path / "kites.txt")), 1, "AzureWebJobsStorage", "--url")
    assert line.startswith("imagegen drop: error: nowhere to drop kites.txt: set AzureWebJobsStorage")


def test_drop_with_a_bad_storage_setting_names_it(tmp_path):
    (tmp_path / "kites.txt").write_text("a kite over the sea\n")
    done = imagegen("drop", str(tmp_path / "kites.txt"), env=cli_env(AzureWebJobsStorage="AccountName=x;not a key"))
    line = failed(done, 1, "`AzureWebJobsStorage`", "is not valid")
    assert "not a key" not in line  # a connection string holds the account key: never echoed


def test_drop_into_storage_it_cannot_reach_says_so_within_seconds(tmp_path):
    (tmp_path / "kites.txt").write_text("a kite over the sea\n")
    unreachable = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                   f"BlobEndpoint=http://127.0.0.1:{closed_port()}/devstoreaccount1;")
    done = imagegen("drop", str(tmp_path / "kites.txt"), env=cli_env(AzureWebJobsStorage=unreachable), timeout=30)
    failed(done, 1, "cannot reach storage to upload kites.txt (connection refused): is Azurite running")


def test_an_unreachable_app_says_to_start_it_or_point_at_it():
    url = f"http://127.0.0.1:{closed_port()}"
    line = failed(imagegen("status", "j1", "--url", url), 1, f"cannot reach {url}", "devhost start", "--url")
    assert "connection refused" in line


@pytest.mark.parametrize("name, content, words", [
    ("missing.yaml", None, ["no such file:", "missing.yaml"]),
    ("bad.yaml", "name: x\nprompts: [{text: a\n", ["bad.yaml is not valid YAML (line 3, column 1:", "fix it"]),
    ("bad.json", '{"name": "x",}', ["bad.json is not valid JSON (line 1, column 14:", "fix it"]),
    ("picture.yaml", b"\x89PNG\r\n\x1a\n\x00\xff", ["picture.yaml is not UTF-8 text"]),
])
def test_a_missing_or_unreadable_job_file_is_named(api, tmp_path, name, content, words):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    failed(imagegen("submit", str(path), "--url", api.url), 1, *words)
    assert api.requests == []  # nothing was sent


def test_a_folder_given_as_a_job_file_is_named(api, tmp_path):
    failed(imagegen("submit", str(tmp_path), "--url", api.url), 1, f"{tmp_path} is a folder")


def test_verify_names_each_file_it_cannot_check_and_exits_1(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    done = imagegen("verify", str(tmp_path / "notes.txt"))
    failed(done, 1, "notes.txt is not an image verify can read", ".png")
    done = imagegen("verify", str(tmp_path / "broken.png"))
    failed(done, 1, "broken.png is not a readable PNG image")
    done = imagegen("verify", str(tmp_path / "absent.png"), "--trust", str(tmp_path / "absent.pem"))
    failed(done, 1, "no such file:", "absent.pem")


def test_a_job_that_does_not_end_in_time_is_a_timeout(api):
    line = failed(imagegen("wait", "endless", "--url", api.url, "--timeout", "1", "--interval", "0.2"), 1,
                  "job endless is still running after 1s", "--timeout", "imagegen status endless")
    assert line.startswith("imagegen wait: error: ")


def test_an_app_that_does_not_answer_in_time_is_a_timeout(api):
    failed(imagegen("wait", "stuck", "--url", api.url, "--timeout", "1"), 1, f"{api.url} did not answer within 1s")


@pytest.mark.parametrize("job_id, words", [
    ("missing", ["Job not found (404): No job with id 'missing' exists."]),
    ("secret", ["Unauthorized (401): sign in first", "--key"]),
    ("crash", ["Internal error (500): The server could not handle", "try again"]),
    ("proxy", ["HTTP 502: <html> <body><h1>502 Bad Gateway</h1> </body></html>"]),
    ("page", ["answered 200 with text/html, not the app's JSON", "base URL"]),
    ("odd", ["unexpected KeyError: 'status'", "IMAGEGEN_DEBUG=1"]),  # what no check foresaw: one line too
])
def test_an_api_problem_is_shown_as_its_title_and_detail(api, job_id, words):
    failed(imagegen("status", job_id, "--url", api.url), 1, *words)


def test_an_invalid_job_shows_every_problem_on_one_line(tmp_path):
    api = FakeApi(problems={"/api/jobs": (400, INVALID_JOB)})
    try:
        (tmp_path / "job.yaml").write_text("name: x\n")
        failed(imagegen("submit", str(tmp_path / "job.yaml"), "--url", api.url), 1,
               "Invalid job (400): The job has 2 problems.; variants.steps: must be from 1 to 150, got 0; "
               "prompts[0].text: is required")
    finally:
        api.close()


@pytest.mark.parametrize("args, words", [
    ([], ["the following arguments are required: COMMAND", "imagegen --help"]),
    (["wait"], ["required: JOB", "imagegen wait --help"]),
    (["list", "--top", "0"], ["--top: must be a whole number of at least 1, got '0'"]),
    (["list", "--status", "done"], ["--status: invalid choice: 'done'"]),
    (["list", "--all", "--top", "5"], ["not allowed with argument"]),
    (["wait", "j1", "--timeout", "soon"], ["--timeout: must be a number of seconds above 0, got 'soon'"]),
    (["--url", "127.0.0.1:7071", "status", "j1"], ["--url must be the app's http(s) base URL"]),
])
def test_a_usage_error_is_one_line_and_exits_2(args, words):
    failed(imagegen(*args), 2, *words)


def test_ctrl_c_while_waiting_exits_130_without_a_traceback(api):
    waiting = start_imagegen("wait", "endless", "--url", api.url, "--interval", "0.1")
    try:
        wait_until(lambda: api.gets("/api/jobs/endless"), timeout=30, what="`imagegen wait` to ask for the job")
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=30)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 130, err
    assert error_line(err) == "imagegen wait: interrupted" and out == ""
