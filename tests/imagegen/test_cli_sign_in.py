"""The CLI behind sign-in: it sends an Entra access token as `Authorization: Bearer`, one
given as is (`--token`) or got for a scope with your Azure login (`--entra-scope`), and
never prints it. A local HTTP server stands in for the app (Entra cannot run here)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from imagegen.cli import api as cli_api
from imagegen.cli import main as cli

TOKEN = "eyJ0eXAiOiJKV1QiLCJub3QiOiJhIHJlYWwgdG9rZW4ifQ.e30.c2lnbmF0dXJl"
SCOPE = "api://00000000-0000-0000-0000-000000000001/.default"


class Server:
    """Answers GET /api/jobs with an empty list (or `status` with a problem), recording headers."""

    def __init__(self, status: int = 200):
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.headers.append({name.lower(): value for name, value in self.headers.items()})
                body = {"jobs": []} if status == 200 else {"title": "Unauthorized", "status": status,
                                                           "detail": "sign in first"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.close()


class Credential:
    """Stands in for DefaultAzureCredential: records the scopes asked for."""

    def __init__(self, expires_in: float = 3600, fails: bool = False):
        self.scopes: list[tuple[str, ...]] = []
        self.expires_in, self.fails = expires_in, fails

    def get_token(self, *scopes: str) -> AccessToken:
        self.scopes.append(scopes)
        if self.fails:
            raise ClientAuthenticationError("DefaultAzureCredential failed: run az login")
        return AccessToken(TOKEN, int(time.time() + self.expires_in))


def test_a_given_token_goes_as_a_bearer_header_and_is_not_printed(server, capsys, monkeypatch):
    assert cli.main(["--url", server.url, "list", "--token", TOKEN]) == 0
    monkeypatch.setenv("IMAGEGEN_TOKEN", TOKEN)
    assert cli.main(["--url", server.url, "list"]) == 0
    assert [h.get("authorization") for h in server.headers] == [f"Bearer {TOKEN}"] * 2
    output = capsys.readouterr()
    assert TOKEN not in "".join((output.out + output.err).split())  # not even wrapped over lines


def test_no_token_no_header(server):
    assert cli.main(["--url", server.url, "list"]) == 0
    assert "authorization" not in server.headers[0]


def test_the_entra_scope_gets_a_token_with_the_azure_login_once(server, capsys, monkeypatch):
    credential = Credential()
    monkeypatch.setattr(cli_api, "entra_credential", lambda: credential)
    api = cli_api.Api(server.url, entra_scope=SCOPE)
    api.call("GET", "jobs")
    api.call("GET", "jobs")
    assert credential.scopes == [(SCOPE,)]  # one token for both calls
    assert [h.get("authorization") for h in server.headers] == [f"Bearer {TOKEN}"] * 2

    monkeypatch.setenv("IMAGEGEN_ENTRA_SCOPE", SCOPE)
    assert cli.main(["--url", server.url, "list"]) == 0
    assert server.headers[-1]["authorization"] == f"Bearer {TOKEN}"
    output = capsys.readouterr()
    assert TOKEN not in "".join((output.out + output.err).split())  # not even wrapped over lines


def test_a_token_about_to_expire_is_got_again(server, monkeypatch):
    credential = Credential(expires_in=60)  # inside the refresh margin
    monkeypatch.setattr(cli_api, "entra_credential", lambda: credential)
    api = cli_api.Api(server.url, entra_scope=SCOPE)
    api.call("GET", "jobs")
    api.call("GET", "jobs")
    assert credential.scopes == [(SCOPE,), (SCOPE,)]


def test_no_azure_login_says_so_and_exits_1(server, capsys, monkeypatch):
    monkeypatch.setattr(cli_api, "entra_credential", lambda: Credential(fails=True))
    assert cli.main(["--url", server.url, "list", "--entra-scope", SCOPE]) == 1
    err = " ".join(capsys.readouterr().err.split())  # as one line: the console wraps long ones
    assert f"cannot get an Entra token for {SCOPE}" in err and "az login" in err
    assert server.headers == []


def test_a_refused_token_shows_the_problem_not_the_token(capsys):
    refusing = Server(status=401)
    try:
        assert cli.main(["--url", refusing.url, "list", "--token", TOKEN]) == 1
    finally:
        refusing.close()
    output = capsys.readouterr()
    assert "Unauthorized (401): sign in first" in " ".join(output.err.split())
    assert TOKEN not in "".join((output.out + output.err).split())  # not even wrapped over lines
