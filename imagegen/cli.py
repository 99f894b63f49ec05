"""`imagegen`: submit jobs, follow them, fetch their images — against devhost or Azure alike.

    imagegen submit examples/spring-campaign.yaml --wait
    imagegen status <job-id>
    imagegen list
    imagegen cancel <job-id>
    imagegen download <job-id> --to out/
    imagegen drop examples/banners.txt          # upload into the `prompts` container

Everything but `drop` talks to the HTTP API (`--url`, `--key`, or IMAGEGEN_URL and
IMAGEGEN_KEY); `drop` writes to blob storage (AzureWebJobsStorage, or
AzureWebJobsStorage__blobServiceUri with your Azure login).
"""

from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import os
import sys
import time
from pathlib import Path

import requests
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imagegen.contact_sheet import write_contact_sheet

console = Console(stderr=True)
ENDED = {"completed", "partial", "rejected", "failed", "cancelled"}


class ApiError(Exception):
    """The API answered with an error: its problem details, readable."""

    def __init__(self, status: int, body: dict | str):
        self.status, self.body = status, body
        if isinstance(body, dict):
            lines = [f"{body.get('title', 'Error')} ({status}): {body.get('detail', '')}"]
            lines += [f"  - {e['path']}: {e['message']}" for e in body.get("errors", [])]
            message = "\n".join(lines)
        else:
            message = f"HTTP {status}: {body[:500]}"
        super().__init__(message)


class Api:
    """The HTTP API of one deployment (devhost or Azure)."""

    def __init__(self, url: str, key: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if key:
            self.session.headers["x-functions-key"] = key

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            response = self.session.request(method, f"{self.url}/api/{path}", timeout=60, **kwargs)
        except requests.ConnectionError:
            raise ApiError(0, f"cannot reach {self.url}: is the app running? (devhost: python -m devhost start)") from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            raise ApiError(response.status_code, body)
        return response

    def submit(self, body: bytes, content_type: str, params: dict[str, str] | None = None) -> dict:
        return self.call("POST", "jobs", data=body, headers={"content-type": content_type}, params=params).json()

    def job(self, job_id: str) -> dict:
        return self.call("GET", f"jobs/{job_id}").json()


def job_body(path: Path) -> tuple[bytes, str, dict[str, str]]:
    """Body, content type and query for a job file; local source images are sent inline.

    A `.txt` file goes as it is: the app reads it as it reads a dropped one.
    """
    if path.suffix.lower() == ".txt":
        return path.read_bytes(), "text/plain; charset=utf-8", {"name": path.stem}
    text = path.read_text(encoding="utf-8")
    document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if isinstance(document, dict):
        for prompt in document.get("prompts") or []:
            image = prompt.get("image") if isinstance(prompt, dict) else None
            local = path.parent / image if isinstance(image, str) else None
            if local is not None and local.is_file():
                kind = mimetypes.guess_type(local.name)[0] or "image/png"
                prompt["image"] = f"data:{kind};base64,{base64.b64encode(local.read_bytes()).decode()}"
    return json.dumps(document).encode(), "application/json", {}


def wait(api: Api, job_id: str, poll: float = 1.0) -> dict:
    """Follow a job with a progress bar until it ends."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task(job_id, total=None)
        while True:
            job = api.job(job_id)
            progress = job.get("progress") or {}
            bar.update(task, total=progress.get("total") or None, completed=progress.get("done", 0),
                       description=escape(f"{job_id} [{job['status']}] {progress.get('phase', '')}"))
            if job["status"] in ENDED:
                return job
            time.sleep(poll)


def download(api: Api, job_id: str, to: Path) -> Path:
    """Images, manifest and an index.html contact sheet into `to/{job_id}/`."""
    manifest = api.call("GET", f"jobs/{job_id}/manifest").json()
    directory = to / job_id
    directory.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for variant in manifest["variants"]:
        if variant["status"] != "ok":
            continue
        name = f"{variant['id']}{Path(variant['blob']).suffix}"
        (directory / name).write_bytes(api.call("GET", f"jobs/{job_id}/images/{variant['id']}").content)
        images[variant["id"]] = name
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return write_contact_sheet(directory, manifest, images)


def drop(path: Path) -> str:
    from imagegen.storage import get_store, prompt_ref

    store = get_store()
    store.ensure_containers()
    ref = prompt_ref(path.name)
    store.put(ref, path.read_bytes())
    return ref


def summary_line(job: dict) -> str:
    summary = job.get("summary") or {}
    counts = ", ".join(f"{summary[k]} {k}" for k in ("ok", "blocked", "unchecked", "failed") if summary.get(k))
    return f"{job['id']}: {job['status']}" + (f" ({counts})" if counts else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen", description="Durable Diffusion: batch image generation jobs.")
    parser.add_argument("--url", default=os.environ.get("IMAGEGEN_URL", "http://127.0.0.1:7071"),
                        help="the app's base URL (default: IMAGEGEN_URL or http://127.0.0.1:7071)")
    parser.add_argument("--key", default=os.environ.get("IMAGEGEN_KEY"), help="a function key (default: IMAGEGEN_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", help="submit a job file (.yaml, .json or .txt)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")
    for name, text in (("status", "show a job"), ("cancel", "cancel a running job")):
        commands.add_parser(name, help=text).add_argument("job_id")
    commands.add_parser("list", help="recent jobs")
    get = commands.add_parser("download", help="download images, manifest and index.html")
    get.add_argument("job_id")
    get.add_argument("--to", type=Path, default=Path("out"))
    commands.add_parser("drop", help="upload a job file into the prompts container").add_argument("file", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    api = Api(args.url, args.key)
    try:
        if args.command == "submit":
            job_id = api.submit(*job_body(args.file))["jobId"]
            print(job_id)
            if args.wait:
                job = wait(api, job_id)
                console.print(summary_line(job))
                return 0 if job["status"] in ("completed", "partial") else 1
        elif args.command == "status":
            print(json.dumps(api.job(args.job_id), indent=2))
        elif args.command == "list":
            for job in api.call("GET", "jobs").json()["jobs"]:
                print(f"{job['createdTime'] or '':32} {job['status']:10} {job['source']:8} {job['id']}")
        elif args.command == "cancel":
            api.call("POST", f"jobs/{args.job_id}/cancel")
            console.print(f"{args.job_id}: cancelling")
        elif args.command == "download":
            sheet = download(api, args.job_id, args.to)
            console.print(f"images, manifest.json and {sheet.name} in {sheet.parent}")
        elif args.command == "drop":
            console.print(f"uploaded {drop(args.file)}")
    except ApiError as error:
        console.print(f"[red]{error}[/red]")
        return 1
    except FileNotFoundError as error:
        console.print(f"[red]no such file: {error.filename}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
