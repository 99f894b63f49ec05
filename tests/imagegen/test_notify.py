"""imagegen.service.notify: which webhook URLs a job may name, and a sender that never raises.

The sender is exercised against a real HTTP receiver on 127.0.0.1 (the operator's URL may
point there); a job's own URL never may, which the address rules test with a fake resolver.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imagegen.core.types import JobValidationError
from imagegen.jobs import webhook_urls
from imagegen.jobs.spec import parse_job
from imagegen.service import notify
from tests.tls import issue_tls_files

PUBLIC = "20.50.2.1"


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("no such host")
        return table[host]
    return resolve


@pytest.mark.parametrize(("url", "allowed", "addresses", "rule", "words"), [
    ("https://hooks.example.com/x", (), [PUBLIC], "notify_hosts", "allows no webhook hosts"),
    ("https://evil.example.net/x", ("hooks.example.com",), [PUBLIC], "notify_hosts", "'evil.example.net', which is not one"),
    ("https://hooks.example.com.evil.net/x", ("hooks.example.com",), [PUBLIC], "notify_hosts", "not one this deployment allows"),
    ("https://hooks.example.com/x", ("hooks.example.com",), ["127.0.0.1"], "notify_address", "resolves to a loopback address"),
    ("https://hooks.example.com/x", ("hooks.example.com",), [PUBLIC, "10.0.0.4"], "notify_address", "private address"),
    ("https://hooks.example.com/x", ("hooks.example.com",), ["169.254.169.254"], "notify_address", "link-local"),
    ("https://hooks.example.com/x", ("hooks.example.com",), ["::ffff:192.168.1.1"], "notify_address", "private"),
    ("https://169.254.169.254/latest", ("169.254.169.254",), ["169.254.169.254"], "notify_address", "link-local"),
    ("http://hooks.example.com/x", ("hooks.example.com",), [PUBLIC], "https_only", "must be an https URL"),
])
def test_a_job_url_is_refused_with_field_rule_and_why(url, allowed, addresses, rule, words):
    host = url.split("/")[2]
    found = webhook_urls.job_url_problems(url, allowed, resolver({host: addresses}))
    assert [(p.path, p.rule) for p in found] == [("notify.url", rule)]
    assert words in found[0].message


def test_a_listed_public_host_and_a_wildcard_subdomain_are_allowed():
    public = resolver({"hooks.example.com": [PUBLIC], "a.b.example.org": [PUBLIC]})
    assert webhook_urls.job_url_problems("https://hooks.example.com/x", ("hooks.example.com",), public) == []
    assert webhook_urls.job_url_problems("https://a.b.example.org/x", ("*.example.org",), public) == []
    assert webhook_urls.job_url_problems("https://example.org/x", ("*.example.org",), resolver({"example.org": [PUBLIC]}))
    assert webhook_urls.job_url_problems("https://gone.example.com/x", ("gone.example.com",), resolver({}))[0].rule == "notify_resolve"


@pytest.mark.parametrize(("url", "rule"), [
    ("http://hooks.example.com/x", "https_only"),
    ("ftp://hooks.example.com/x", "https_only"),
    ("https:///x", "url_format"),
    ("https://user:pw@hooks.example.com/x", "url_credentials"),
    ("https://hooks.example.com:99999/x", "url_format"),
])
def test_the_job_schema_checks_the_url_shape(url, rule):
    with pytest.raises(JobValidationError) as error:
        parse_job({"name": "n", "prompts": [{"text": "a"}], "notify": {"url": url}})
    assert [(e.path, e.rule) for e in error.value.errors] == [("notify.url", rule)]


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers each call with the next planned status
    ('hang' waits until released)."""

    def __init__(self, plan: list):
        self.plan, self.calls, self.release = list(plan), [], threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.calls.append(body)
                answer = receiver.plan.pop(0) if receiver.plan else 200
                if answer == "hang":
                    receiver.release.wait(30)
                    return
                self.send_response(answer if isinstance(answer, int) else 302)
                if answer == "redirect":
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def receiver(request):
    made = []

    def make(plan):
        made.append(Receiver(plan))
        return made[-1]
    yield make
    for item in made:
        item.close()


def send(url, **options):
    body = notify.message("ended", job_id="j-1", name="j", status="completed", counts={"ok": 2, "total": 2},
                          gallery_url="/api/gallery/jobs/j-1", manifest_url="/api/jobs/j-1/manifest")
    return notify.send(url, body, event="ended", allowed=None, delays=(0, 0), **options)


def test_a_failing_webhook_is_retried_and_its_last_answer_recorded(receiver):
    hook = receiver([500, 503, 200])
    record = send(hook.url)
    assert (record.status, record.attempts, record.http_status) == ("sent", 3, 200)
    assert len(hook.calls) == 3 and hook.calls[0]["text"].startswith("Job j (j-1) ended completed")
    assert record.host == "127.0.0.1" and "secret-token" not in record.model_dump_json()
    down = receiver([500, 500, 500])
    assert send(down.url).model_dump(include={"status", "attempts", "http_status"}) == {
        "status": "failed", "attempts": 3, "http_status": 500}


def test_a_refusal_is_not_retried_and_a_redirect_is_not_followed(receiver):
    hook = receiver([404])
    assert (send(hook.url).status, len(hook.calls)) == ("failed", 1)
    moved = receiver(["redirect"])
    record = send(moved.url)
    assert (record.status, record.http_status, len(moved.calls)) == ("failed", 302, 1)


def test_a_hanging_webhook_times_out_and_the_sender_returns(receiver):
    hook = receiver(["hang", "hang"])
    record = send(hook.url, attempts=2, timeout=0.5)
    assert (record.status, record.attempts, record.error) == ("failed", 2, "ReadTimeout")


def test_a_job_url_is_checked_again_before_sending():
    record = notify.send("https://hooks.example.com/x", {}, event="ended", allowed=("hooks.example.com",),
                         resolver=resolver({"hooks.example.com": ["10.0.0.9"]}))
    assert (record.status, record.attempts) == ("refused", 0) and "private address" in record.error


@pytest.fixture
def tls_receiver(tmp_path):
    """An https receiver on 127.0.0.1 whose certificate names hooks.example.com; it records
    each call's Host header and body."""
    import ssl

    ca_file, cert_file, key_file = issue_tls_files(tmp_path, "hooks.example.com")
    calls = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            calls.append((self.headers["Host"], json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, ca_file, calls
    server.shutdown()


def rebinding_resolver(first: str, then: str):
    """Answers `first` to the first lookup and `then` to every later one."""
    answers = []

    def resolve(host: str, port: int) -> list[str]:
        answers.append(host)
        return [first if len(answers) == 1 else then]
    return resolve


def loopback_is_public_here(address: str) -> str | None:
    # The receiver can only be on 127.0.0.1: these tests treat it as the public address,
    # and 10.x as the private one a rebinding DNS answer would lead to.
    return "private" if address.startswith("10.") else None


def test_a_job_url_is_sent_to_the_address_that_was_checked_not_to_a_second_lookup(tls_receiver):
    port, ca_file, calls = tls_receiver
    url = f"https://hooks.example.com:{port}/hook/secret-token"
    record = notify.send(url, {"text": "done"}, event="ended", allowed=("hooks.example.com",), delays=(0, 0),
                         resolver=rebinding_resolver("127.0.0.1", "10.9.9.9"), forbidden=loopback_is_public_here,
                         ca_certs=ca_file)
    assert (record.status, record.http_status, record.attempts) == ("sent", 204, 1)
    # The certificate was checked against the URL's host name, which the request also names.
    assert calls == [(f"hooks.example.com:{port}", {"text": "done"})]


def test_a_job_url_whose_certificate_names_another_host_is_not_sent(tls_receiver):
    port, ca_file, calls = tls_receiver
    record = notify.send(f"https://other.example.com:{port}/hook", {"text": "done"}, event="ended",
                         allowed=("other.example.com",), delays=(0, 0), resolver=rebinding_resolver("127.0.0.1", "127.0.0.1"),
                         forbidden=loopback_is_public_here, ca_certs=ca_file)
    assert (record.status, record.http_status) == ("failed", None) and record.error
    assert calls == []
