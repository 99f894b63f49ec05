"""`imagegen`: submit jobs, follow them, fetch their images — against devhost or Azure alike.

    imagegen submit examples/spring-campaign.yaml --wait
    imagegen status <job-id> [--json]
    imagegen list [--json]
    imagegen cancel <job-id>
    imagegen download <job-id> --to out/
    imagegen drop examples/banners.txt          # upload into the `prompts` container
    imagegen review <job-id> --approve v000,v003 --reject v001 [--note ...] [--finish]
    imagegen open <job-id>                      # the job's gallery page

Everything but `drop` talks to the HTTP API (`--url`, `--key`, or IMAGEGEN_URL and
IMAGEGEN_KEY; before or after the subcommand); with sign-in on in Azure, `--entra-scope
api://<client id>/.default` (IMAGEGEN_ENTRA_SCOPE) gets an Entra token with your Azure login,
or `--token` (IMAGEGEN_TOKEN) sends one you got elsewhere; `drop` writes to blob storage
(AzureWebJobsStorage, or AzureWebJobsStorage__blobServiceUri with your Azure login).
`--json` on `submit`, `status` and `list` prints what the API answered, for scripts.

The CLI is a thin HTTP client: `pip install .` installs it without torch or diffusers
(the app's own dependencies are the `app` extra), so nothing here may import them.
"""

from __future__ import annotations

import argparse
import base64
import importlib.metadata
import json
import mimetypes
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imagegen.cli.contact_sheet import write_contact_sheet
from imagegen.core.types import ENDED_STATES

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, TokenCredential

console = Console(stderr=True)
ENDED = ENDED_STATES
# Where `submit --wait` stops following a job: it ended, or it waits for people.
SETTLED = ENDED | {"awaiting_review"}


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


def entra_credential() -> TokenCredential:
    """Your Azure login (`az login`, environment variables, a managed identity, ...)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class EntraToken(requests.auth.AuthBase):
    """`Authorization: Bearer` with an Entra access token for `scope`, got once and again
    shortly before it expires (a long `submit --wait` outlives one token)."""

    REFRESH_SECONDS = 300

    def __init__(self, scope: str):
        self.scope = scope
        self.credential: TokenCredential | None = None
        self.token: AccessToken | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is None or self.token.expires_on - self.REFRESH_SECONDS < time.time():
            from azure.core.exceptions import ClientAuthenticationError

            self.credential = self.credential or entra_credential()
            try:
                self.token = self.credential.get_token(self.scope)
            except ClientAuthenticationError as error:
                # The credential's message says which logins it tried; it holds no token.
                raise ApiError(0, f"cannot get an Entra token for {self.scope}: {error.message}") from None
        request.headers["Authorization"] = f"Bearer {self.token.token}"
        return request


class Api:
    """The HTTP API of one deployment (devhost or Azure)."""

    def __init__(self, url: str, key: str | None = None, token: str | None = None, entra_scope: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if key:
            self.session.headers["x-functions-key"] = key
        # Behind sign-in (IMAGEGEN_SIGN_IN=entra): an Entra access token for the app registration.
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif entra_scope:
            self.session.auth = EntraToken(entra_scope)

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
            if job["status"] in SETTLED:
                return job
            time.sleep(poll)


def download(api: Api, job_id: str, to: Path) -> Path:
    """Images, manifest and an index.html contact sheet into `to/{job_id}/`; a reviewed
    job's approved images also into `to/{job_id}/published/`, from the published container."""
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
        if (variant.get("review") or {}).get("published"):
            (directory / "published").mkdir(exist_ok=True)
            (directory / "published" / name).write_bytes(
                api.call("GET", f"jobs/{job_id}/published/{variant['id']}").content)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return write_contact_sheet(directory, manifest, images)


def drop(path: Path) -> str:
    from imagegen.core.blob_names import prompt_ref
    from imagegen.core.settings import Settings
    from imagegen.storage.blobs import open_store

    store = open_store(Settings.from_env())  # the storage settings: AzureWebJobsStorage, as the app reads them
    ref = prompt_ref(path.name)
    store.put(ref, path.read_bytes())
    return ref


def summary_line(job: dict) -> str:
    # Counts of what was made: the summary once the job ended, its progress before that.
    summary = job.get("summary") or (job.get("progress") if isinstance(job.get("progress"), dict) else None) or {}
    counts = ", ".join(f"{summary[k]} {k}" for k in ("ok", "blocked", "unchecked", "failed", "cancelled") if summary.get(k))
    line = f"{job['id']}: {job['status']}" + (f" ({counts})" if counts else "")
    return line + review_line(job)


def review_line(job: dict) -> str:
    """'; review: 2 approved, 1 rejected, 5 undecided (until ...)' for a job with review."""
    progress = job.get("progress") or {}
    summary = job.get("summary") or {}
    decided = progress.get("review") if isinstance(progress, dict) else None
    if summary.get("approved") is not None:
        decided = {k: summary[k] for k in ("approved", "rejected", "undecided")}
    if not decided:
        return ""
    words = ", ".join(f"{decided.get(k, 0)} {k}" for k in ("approved", "rejected", "undecided"))
    deadline = str(progress.get("deadline") or "")[:16].replace("T", " ")
    until = f" until {deadline} UTC" if job["status"] == "awaiting_review" and deadline else ""
    return f"; review: {words}{until}"


def split_ids(values: list[str] | None) -> list[str]:
    """`--approve v000,v003 --approve v005` -> ['v000', 'v003', 'v005']."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def gallery_url(api: Api, job_id: str) -> str:
    from urllib.parse import quote

    return f"{api.url}/api/gallery/jobs/{quote(job_id, safe='')}"


def open_in_browser(url: str) -> bool:
    """Open `url` where a graphical browser exists; False (and nothing run) elsewhere."""
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    # Text browsers (lynx, w3m) would take over this terminal: only open a graphical one.
    if isinstance(browser, webbrowser.GenericBrowser) and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        return False
    return browser.open(url)


def version() -> str:
    try:
        return importlib.metadata.version("durable-diffusion")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def connection_options(defaults: bool) -> argparse.ArgumentParser:
    """`--url`, `--key`, `--entra-scope` and `--token`, accepted before or after the subcommand.

    After it they are parsed by the subcommand's parser: with no default there
    (SUPPRESS), so that it does not overwrite a value given before the subcommand.
    """
    options = argparse.ArgumentParser(add_help=False)
    url_default = os.environ.get("IMAGEGEN_URL", "http://127.0.0.1:7071") if defaults else argparse.SUPPRESS
    key_default = os.environ.get("IMAGEGEN_KEY") if defaults else argparse.SUPPRESS
    options.add_argument("--url", default=url_default,
                         help="the app's base URL (default: IMAGEGEN_URL or http://127.0.0.1:7071)")
    options.add_argument("--key", default=key_default, help="a function key (default: IMAGEGEN_KEY)")
    scope_default = os.environ.get("IMAGEGEN_ENTRA_SCOPE") if defaults else argparse.SUPPRESS
    token_default = os.environ.get("IMAGEGEN_TOKEN") if defaults else argparse.SUPPRESS
    options.add_argument("--entra-scope", default=scope_default, metavar="SCOPE",
                         help="with sign-in on: get an Entra token for SCOPE (api://<client id>/.default) "
                         "with your Azure login (default: IMAGEGEN_ENTRA_SCOPE)")
    options.add_argument("--token", default=token_default,
                         help="with sign-in on: an Entra access token to send as is (default: IMAGEGEN_TOKEN)")
    return options


def verify_files(files: list[Path], trust: Path | None, as_json: bool) -> int:
    """Print what each file's Content Credentials say; 1 when any has none or they do not hold."""
    from imagegen.checks import provenance  # the C2PA library loads only for this command

    trust_pem = trust.read_text() if trust else None
    results, ok = {}, True
    for path in files:
        found = provenance.verify(path.read_bytes(), path.suffix.lstrip("."), trust_pem)
        passed = found.valid and (found.trusted or trust_pem is None)
        ok = ok and passed
        results[str(path)] = found.model_dump() | {"valid": passed}
        if not as_json:
            print(f"{path}: {'valid' if passed else 'NOT valid'}")
            if found.has_credentials:
                print(f"  signature {'valid' if found.signature_valid else 'INVALID'}, "
                      f"hard binding {'valid' if found.hard_binding_valid else 'INVALID'}, "
                      f"{'trusted' if found.trusted else 'untrusted' if trust_pem else 'trust not checked'}; "
                      f"signer {found.signer}")
                made = ("AI-generated (IPTC trainedAlgorithmicMedia)"
                        if found.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA
                        else found.digital_source_type)
                print(f"  {made}; job {found.job_id}, variant {found.variant_id}"
                      + (f"; from {', '.join(found.ingredients)}" if found.ingredients else ""))
            for failure in found.failures:
                print(f"  {failure}")
    if as_json:
        print(json.dumps(results, indent=2))
    return 0 if ok else 1


def default_reviewer() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen", description="Durable Diffusion: batch image generation jobs.",
                                     parents=[connection_options(defaults=True)])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    after = [connection_options(defaults=False)]
    commands = parser.add_subparsers(dest="command", required=True)
    submit = commands.add_parser("submit", parents=after, help="submit a job file (.yaml, .json or .txt)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--wait", action="store_true", help="follow the job until it ends")
    status = commands.add_parser("status", parents=after, help="show a job")
    status.add_argument("job_id")
    commands.add_parser("cancel", parents=after, help="cancel a running job").add_argument("job_id")
    listing = commands.add_parser("list", parents=after, help="recent jobs")
    for command in (submit, status, listing):
        command.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    get = commands.add_parser("download", parents=after, help="download images, manifest and index.html")
    get.add_argument("job_id")
    get.add_argument("--to", type=Path, default=Path("out"))
    decide = commands.add_parser("review", parents=after, help="approve or reject images of a job awaiting review")
    decide.add_argument("job_id")
    decide.add_argument("--approve", action="append", metavar="IDS", help="variant ids to approve, comma-separated (v003 or the whole id)")
    decide.add_argument("--reject", action="append", metavar="IDS", help="variant ids to reject, comma-separated")
    decide.add_argument("--note", default="", help="why, for the record")
    decide.add_argument("--finish", action="store_true", help="end the review: undecided images stay unpublished")
    decide.add_argument("--reviewer", default=os.environ.get("IMAGEGEN_REVIEWER") or default_reviewer(),
                        help="who decides (default: IMAGEGEN_REVIEWER or your login name); a signed-in user "
                        "in Azure is taken from the sign-in instead")
    show = commands.add_parser("open", parents=after, help="print the job's gallery URL and open it in a browser")
    show.add_argument("job_id")
    show.add_argument("--no-browser", action="store_true", help="only print the URL")
    drop_files = commands.add_parser("drop", parents=after, help="upload a job file into the prompts container")
    drop_files.add_argument("file", type=Path)
    check = commands.add_parser("verify", help="check the Content Credentials (C2PA) of image files")
    check.add_argument("files", type=Path, nargs="+")
    check.add_argument("--trust", type=Path, help="trust anchor(s), PEM: e.g. the development CA, .devhost/c2pa/dev-ca.pem")
    check.add_argument("--json", action="store_true", help="print what was found as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "verify":
        return verify_files(args.files, args.trust, args.json)
    api = Api(args.url, args.key, token=args.token, entra_scope=args.entra_scope)
    try:
        if args.command == "submit":
            accepted = api.submit(*job_body(args.file))
            job_id = accepted["jobId"]
            if not args.json:
                print(job_id)
            if args.wait:
                job = wait(api, job_id)
                if args.json:
                    print(json.dumps(job, indent=2))
                else:
                    console.print(summary_line(job))
                if job["status"] == "awaiting_review" and not args.json:
                    console.print(f"review it: {gallery_url(api, job_id)}  or  imagegen review {job_id} --approve ...")
                return 0 if job["status"] in ("completed", "partial", "awaiting_review") else 1
            if args.json:
                print(json.dumps(accepted, indent=2))
        elif args.command == "status":
            job = api.job(args.job_id)
            print(json.dumps(job, indent=2) if args.json else summary_line(job))
        elif args.command == "list":
            jobs = api.call("GET", "jobs").json()["jobs"]
            if args.json:
                print(json.dumps(jobs, indent=2))
            else:
                for job in jobs:
                    print(f"{job['createdTime'] or '':32} {job['status']:10} {job['source']:8} {job['id']}")
        elif args.command == "cancel":
            api.call("POST", f"jobs/{args.job_id}/cancel")
            console.print(f"{args.job_id}: cancelling")
        elif args.command == "download":
            sheet = download(api, args.job_id, args.to)
            console.print(f"images, manifest.json and {sheet.name} in {sheet.parent}")
        elif args.command == "drop":
            console.print(f"uploaded {drop(args.file)}")
        elif args.command == "review":
            body = {"approve": split_ids(args.approve), "reject": split_ids(args.reject), "note": args.note,
                    "finish": args.finish}
            if args.reviewer:
                body["reviewer"] = args.reviewer
            accepted = api.call("POST", f"jobs/{args.job_id}/review", json=body).json()
            console.print(f"{args.job_id}: {len(accepted['approve'])} approved, {len(accepted['reject'])} rejected"
                          + (", review finished" if accepted.get("finish") else "") + f" by {accepted['reviewer']}")
        elif args.command == "open":
            api.job(args.job_id)  # a job that does not exist is an error here, not a 404 page later
            url = gallery_url(api, args.job_id)
            print(url)
            if not args.no_browser:
                open_in_browser(url)
    except ApiError as error:
        console.print(f"[red]{error}[/red]")
        return 1
    except FileNotFoundError as error:
        console.print(f"[red]no such file: {error.filename}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
