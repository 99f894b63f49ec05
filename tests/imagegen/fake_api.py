"""The app's HTTP API as far as `imagegen` uses it, scripted by each test.

    api = FakeApi(jobs={"j1": [job("j1", "running"), job("j1", "partial")]})
    done = imagegen("wait", "j1", "--url", api.url)          # tests/cli_command.py

- `jobs`: `GET /api/jobs/{id}` answers the id's views in turn, the last one for ever after;
- `listed`: `GET /api/jobs` pages these (newest first) with `top` (at most `most_per_page`)
  and an offset as the opaque `continuationToken`, filtered by `status` as the app does;
- `problems`: a path answered with (HTTP status, body) as given;
- `hanging`: paths that never answer (until the server closes);
- `POST /api/jobs` answers 202 with the job id `submitted`;
- `requests` records every request: (method, path, query, content type, body).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def job(job_id: str, status: str, phase: str = "generating", done: int = 0, total: int = 4, **fields) -> dict:
    """A job as `GET /api/jobs/{id}` shows it; ended states carry a summary."""
    view = {"id": job_id, "name": job_id, "source": "http", "status": status, "createdTime": fields.pop("created", None),
            "lastUpdatedTime": fields.pop("updated", "2030-01-01T00:00:00+00:00")}
    if status in ("completed", "partial", "rejected", "failed", "cancelled"):
        view["summary"] = {"status": status, "ok": done, "failed": total - done}
    else:
        view["progress"] = {"phase": phase, "total": total, "done": done, "ok": done}
    return view | fields


class FakeApi:
    def __init__(self, jobs: dict[str, list[dict]] | None = None, listed: list[dict] | None = None,
                 problems: dict[str, tuple[int, dict | str]] | None = None, hanging: tuple[str, ...] = (),
                 most_per_page: int = 200, submitted: str = "job-1"):
        self.jobs = {job_id: list(views) for job_id, views in (jobs or {}).items()}
        self.listed = listed or []
        self.problems = problems or {}
        self.hanging = hanging
        self.most_per_page = most_per_page
        self.submitted = submitted
        self.requests: list[tuple[str, str, dict[str, str], str, bytes]] = []
        self.closing = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def gets(self, path: str) -> int:
        return sum(1 for method, seen, *_ in self.requests if method == "GET" and seen == path)

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, dict | str]:
        if path in self.hanging:
            self.closing.wait(60)
            return 503, "closing"
        if path in self.problems:
            return self.problems[path]
        if method == "POST" and path == "/api/jobs":
            return 202, {"id": self.submitted, "jobId": self.submitted, "jobUrl": f"{self.url}/api/jobs/{self.submitted}"}
        if method == "GET" and path == "/api/jobs":
            return 200, self.page(query)
        job_id = unquote(path.removeprefix("/api/jobs/"))
        if method == "GET" and job_id in self.jobs:
            views = self.jobs[job_id]
            return 200, views.pop(0) if len(views) > 1 else views[0]
        return 404, {"title": "Job not found", "status": 404, "detail": f"No job with id {job_id!r} exists."}

    def page(self, query: dict[str, str]) -> dict:
        """One page of `listed`, as today's app pages (an offset as the token)."""
        jobs = [j for j in self.listed if j["status"] == query["status"]] if query.get("status") else self.listed
        top = min(int(query.get("top", "20")), self.most_per_page)
        start = int(query.get("continuationToken") or "0")
        more = start + top < len(jobs)
        return {"jobs": jobs[start:start + top], "continuationToken": str(start + top) if more else None}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                self.respond("GET")

            def do_POST(self):  # noqa: N802
                self.respond("POST")

            def respond(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                api.requests.append((method, parts.path, query, self.headers.get("content-type", ""), body))
                status, answer = api.answer(method, parts.path, query)
                payload = json.dumps(answer).encode() if isinstance(answer, dict) else answer.encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json" if isinstance(answer, dict) else "text/html")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the command gave up on this call (a hanging path) and went
                    pass

            def log_message(self, *args):
                pass

        return Handler
