# PYTHON_ARGCOMPLETE_OK  (argcomplete's mark: this command completes in a shell)
"""`imagegen`: submit jobs, follow them, fetch their images — against devhost or Azure alike.

    imagegen submit examples/spring-campaign.yaml --wait
    imagegen status <job-id> [--json]
    imagegen wait <job-id> [--timeout S]        # until it ends; exits by how it ended
    imagegen watch <job-id> [--json]            # a progress bar; JSON lines with --json
    imagegen list [--all | --top N] [--status S] [--json]
    imagegen cancel <job-id>
    imagegen download <job-id> --to out/
    imagegen drop examples/banners.txt          # into the `prompts` container, or through the API with --url
    imagegen review <job-id> --approve v000,v003 --reject v001 [--note ...] [--finish]
    imagegen open <job-id>                      # the job's gallery page
    imagegen verify out/<job-id>/*.png --trust .devhost/c2pa/dev-ca.pem
    imagegen adapters put brand.safetensors [--name brand]   # a LoRA into the `adapters` container
    imagegen adapters list

Everything but `verify` talks to the HTTP API (`--url`, `--key`, or IMAGEGEN_URL and
IMAGEGEN_KEY; before or after the subcommand); with sign-in on in Azure, `--entra-scope
api://<client id>/.default` (IMAGEGEN_ENTRA_SCOPE) gets an Entra token with your Azure login,
or `--token` (IMAGEGEN_TOKEN) sends one you got elsewhere. `drop` without a URL writes to
blob storage (AzureWebJobsStorage, or AzureWebJobsStorage__blobServiceUri with your Azure
login), and so do `adapters put` and `adapters list`. Exit codes and the one-line errors: `imagegen.cli.exits`.

The CLI is a thin HTTP client: `pip install .` installs it without torch or diffusers
(the app's own dependencies are the `app` extra), so nothing here may import them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

from rich.console import Console

from imagegen.cli.adapters import list_adapters, put_adapter
from imagegen.cli.api import quote_id
from imagegen.cli.completion import complete_if_asked, recent_job_ids
from imagegen.cli.connection import api_for, connection_options, given_url
from imagegen.cli.downloads import download
from imagegen.cli.dropping import drop_into_storage, drop_through_api, nowhere_to_drop, storage_configured
from imagegen.cli.exits import CliError, Exit, job_exit, one_line
from imagegen.cli.following import ENDED, SETTLED, follow, follow_with_progress, json_lines, progress_bar, quietly, text_lines
from imagegen.cli.job_files import job_body
from imagegen.cli.job_lines import list_row, summary_line
from imagegen.cli.listing import DEFAULT_TOP, list_jobs
from imagegen.cli.parsing import Parser, at_least_one, positive_seconds
from imagegen.cli.verifying import verify_files
from imagegen.core.types import JOB_STATES

console = Console(stderr=True)


def say(text: str) -> None:
    """A message for people on stderr (stdout is for what scripts read)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


# -- the commands: each takes the parsed arguments and returns the exit code ---------------

def run_submit(args: argparse.Namespace) -> int:
    api = api_for(args)
    accepted = api.submit(*job_body(args.file))
    job_id = accepted["jobId"]
    if not args.wait:
        print(json.dumps(accepted, indent=2) if args.json else job_id)
        return Exit.OK
    if not args.json:
        print(job_id, flush=True)
    job = follow_with_progress(api, job_id, until=SETTLED, interval=args.interval, timeout=args.timeout)
    if args.json:
        print(json.dumps(job, indent=2))
    elif job["status"] == "awaiting_review":
        say(f"review it: {gallery_url(api.url, job_id)}  or  imagegen review {job_id} --approve ...")
    return job_exit(job["status"])


def run_status(args: argparse.Namespace) -> int:
    job = api_for(args).job(args.job_id)
    print(json.dumps(job, indent=2) if args.json else summary_line(job))
    return job_exit(job["status"])


def run_wait(args: argparse.Namespace) -> int:
    job = follow(api_for(args), args.job_id, until=ENDED, on_change=quietly, interval=args.interval,
                 timeout=args.timeout)
    print(json.dumps(job, indent=2) if args.json else summary_line(job))
    return job_exit(job["status"])


def run_watch(args: argparse.Namespace) -> int:
    api = api_for(args)
    screen = Console()
    if args.json or not screen.is_terminal:
        show = json_lines(sys.stdout) if args.json else text_lines(sys.stdout)
        job = follow(api, args.job_id, until=ENDED, on_change=show, interval=args.interval, timeout=args.timeout)
    else:
        with progress_bar(args.job_id, screen) as show:
            job = follow(api, args.job_id, until=ENDED, on_change=show, interval=args.interval, timeout=args.timeout)
        print(summary_line(job))
    return job_exit(job["status"])


def run_list(args: argparse.Namespace) -> int:
    jobs = list_jobs(api_for(args), top=None if args.all else args.top, status=args.status)
    if args.json:
        print(json.dumps(list(jobs), indent=2))
        return Exit.OK
    shown = 0
    for job in jobs:
        print(list_row(job), flush=True)
        shown += 1
    if not shown:
        say(f"no {args.status} jobs" if args.status else "no jobs")
    return Exit.OK


def run_cancel(args: argparse.Namespace) -> int:
    api_for(args).call("POST", f"jobs/{quote_id(args.job_id)}/cancel")
    say(f"{args.job_id}: cancelling")
    return Exit.OK


def run_download(args: argparse.Namespace) -> int:
    sheet = download(api_for(args), args.job_id, args.to)
    say(f"images, manifest.json and {sheet.name} in {sheet.parent}")
    return Exit.OK


def run_drop(args: argparse.Namespace) -> int:
    if given_url(args):
        api = api_for(args)
        job_id = drop_through_api(api, args.file)
        print(job_id)
        say(f"submitted {args.file.name} through {api.url} as job {job_id}")
    elif storage_configured():
        say(f"uploaded {drop_into_storage(args.file)}")
    else:
        raise nowhere_to_drop(args.file)
    return Exit.OK


def run_adapters_put(args: argparse.Namespace) -> int:
    ref = put_adapter(args.file, args.name)
    print(print_name(ref))
    say(f"uploaded {args.file.name} as {ref}: jobs name it with `adapters: [{{name: {print_name(ref)}}}]`")
    return Exit.OK


def print_name(ref: str) -> str:
    return ref.split("/", 1)[1].removesuffix(".safetensors")


def run_adapters_list(args: argparse.Namespace) -> int:
    for name in list_adapters():
        print(name)
    return Exit.OK


def run_review(args: argparse.Namespace) -> int:
    body = {"approve": split_ids(args.approve), "reject": split_ids(args.reject), "note": args.note,
            "finish": args.finish}
    if args.reviewer:
        body["reviewer"] = args.reviewer
    accepted = api_for(args).call_json("POST", f"jobs/{quote_id(args.job_id)}/review", json=body)
    say(f"{args.job_id}: {len(accepted['approve'])} approved, {len(accepted['reject'])} rejected"
        + (", review finished" if accepted.get("finish") else "") + f" by {accepted['reviewer']}")
    return Exit.OK


def run_open(args: argparse.Namespace) -> int:
    api = api_for(args)
    api.job(args.job_id)  # a job that does not exist is an error here, not a 404 page later
    url = gallery_url(api.url, args.job_id)
    print(url)
    if not args.no_browser:
        open_in_browser(url)
    return Exit.OK


def run_verify(args: argparse.Namespace) -> int:
    return verify_files(args.files, args.trust, args.json)


# -- helpers ------------------------------------------------------------------------------

def split_ids(values: list[str] | None) -> list[str]:
    """`--approve v000,v003 --approve v005` -> ['v000', 'v003', 'v005']."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def gallery_url(base_url: str, job_id: str) -> str:
    return f"{base_url.rstrip('/')}/api/gallery/jobs/{quote_id(job_id)}"


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


def default_reviewer() -> str | None:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return None


# -- the command line ---------------------------------------------------------------------

def job_id_argument(parser: argparse.ArgumentParser) -> None:
    action = parser.add_argument("job_id", metavar="JOB", help="the job's id (as submit printed it)")
    action.completer = recent_job_ids  # type: ignore[attr-defined]  # argcomplete reads it


def following_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=positive_seconds, metavar="S",
                        help="give up after S seconds (exit 1); default: wait as long as it takes")
    parser.add_argument("--interval", type=positive_seconds, default=1.0, metavar="S",
                        help="ask the API for the job every S seconds (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="imagegen", description="Durable Diffusion: batch image generation jobs.",
                    parents=[connection_options(before_command=True)], epilog=EXIT_CODES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    after = [connection_options(before_command=False)]
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", parents=after, help="submit a job file (.yaml, .json or .txt)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--wait", action="store_true",
                        help="follow the job until it ends or awaits review, and exit by how it ended")
    following_options(submit)
    status = commands.add_parser("status", parents=after, help="show a job; exit by its state")
    job_id_argument(status)
    wait = commands.add_parser("wait", parents=after, help="wait until a job ends; exit by how it ended")
    job_id_argument(wait)
    following_options(wait)
    watch = commands.add_parser("watch", parents=after,
                                help="follow a job until it ends: a progress bar, or JSON lines with --json")
    job_id_argument(watch)
    following_options(watch)
    listing = commands.add_parser("list", parents=after, help="jobs, newest first")
    how_many = listing.add_mutually_exclusive_group()
    how_many.add_argument("--top", type=at_least_one, default=DEFAULT_TOP, metavar="N",
                          help=f"the newest N jobs (default {DEFAULT_TOP})")
    how_many.add_argument("--all", action="store_true", help="every job, page by page")
    listing.add_argument("--status", choices=JOB_STATES, help="only jobs in this state")
    for command in (submit, status, wait, listing):
        command.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    watch.add_argument("--json", action="store_true", help="print the job as JSON, one line per change")
    job_id_argument(commands.add_parser("cancel", parents=after, help="cancel a running job"))
    get = commands.add_parser("download", parents=after, help="download images, manifest and index.html")
    job_id_argument(get)
    get.add_argument("--to", type=Path, default=Path("out"))
    add_review(commands, after)
    show = commands.add_parser("open", parents=after, help="print the job's gallery URL and open it in a browser")
    job_id_argument(show)
    show.add_argument("--no-browser", action="store_true", help="only print the URL")
    drop_files = commands.add_parser("drop", parents=after, help="hand a job file to the app as a dropped file",
                                     description=DROP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    drop_files.add_argument("file", type=Path)
    check = commands.add_parser("verify", help="check the Content Credentials (C2PA) of image files")
    check.add_argument("files", type=Path, nargs="+")
    check.add_argument("--trust", type=Path, help="trust anchor(s), PEM: e.g. the development CA, .devhost/c2pa/dev-ca.pem")
    check.add_argument("--json", action="store_true", help="print what was found as JSON")
    add_adapters(commands)
    for name, run in RUNS.items():
        commands.choices[name].set_defaults(run=run)
    return parser


def add_adapters(commands) -> None:
    adapters = commands.add_parser("adapters", help="LoRA adapters in the `adapters` container (through storage)",
                                   description=ADAPTERS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = adapters.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = actions.add_parser("put", help="check a .safetensors LoRA and upload it")
    put.add_argument("file", type=Path)
    put.add_argument("--name", help="the name jobs give it (default: the file's name without .safetensors)")
    put.set_defaults(run=run_adapters_put)
    actions.add_parser("list", help="the adapters' names, one a line").set_defaults(run=run_adapters_list)


def add_review(commands, after: list[Parser]) -> None:
    decide = commands.add_parser("review", parents=after, help="approve or reject images of a job awaiting review")
    job_id_argument(decide)
    decide.add_argument("--approve", action="append", metavar="IDS", help="variant ids to approve, comma-separated (v003 or the whole id)")
    decide.add_argument("--reject", action="append", metavar="IDS", help="variant ids to reject, comma-separated")
    decide.add_argument("--note", default="", help="why, for the record")
    decide.add_argument("--finish", action="store_true", help="end the review: undecided images stay unpublished")
    decide.add_argument("--reviewer", default=os.environ.get("IMAGEGEN_REVIEWER") or default_reviewer(),
                        help="who decides (default: IMAGEGEN_REVIEWER or your login name); a signed-in user "
                        "in Azure is taken from the sign-in instead")


RUNS = {"submit": run_submit, "status": run_status, "wait": run_wait, "watch": run_watch, "list": run_list,
        "cancel": run_cancel, "download": run_download, "review": run_review, "open": run_open, "drop": run_drop,
        "verify": run_verify}

EXIT_CODES = """exit codes:
  0    done; for a job: it completed (`status`: or has not ended yet; `submit --wait`: or awaits review)
  1    an error (one line on stderr says what to do)
  2    usage: a bad option or argument
  3    the job ended partial
  4    the job ended rejected, failed or cancelled
  130  interrupted (Ctrl-C)"""

DROP_HELP = """Hand a job file to the app.

Without --url (or IMAGEGEN_URL), with AzureWebJobsStorage (or AzureWebJobsStorage__blobServiceUri
and your Azure login): upload it into the `prompts` container, where the app picks it up (source
`blob`; the same file unchanged never runs twice; images it names are read beside it in `prompts`;
a file the app cannot run is moved to `prompts-rejected/` with its reasons).

With --url (or IMAGEGEN_URL): submit it through the API, as `imagegen submit` does (source `http`;
it runs each time; images it names are read beside it on this machine; a bad file is refused at
once, exit 1, and nothing is kept of it). Prints the job id."""


ADAPTERS_HELP = """LoRA adapters jobs may name (`adapters: [{name: brand, weight: 0.8}]`).

`put FILE` checks the file as the app will (a safetensors file of LoRA weights, at most
IMAGEGEN_MAX_ADAPTER_BYTES) and uploads it to adapters/NAME.safetensors; `list` prints the
names. Both go through storage: AzureWebJobsStorage, or AzureWebJobsStorage__blobServiceUri
with your Azure login. Whether an adapter fits a job's model is checked when the job is submitted."""


# -- running it ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    complete_if_asked(parser)
    prog = "imagegen"
    try:
        args = parser.parse_args(argv)
        prog = f"imagegen {args.command}"
        return int(args.run(args))
    except CliError as error:
        report(f"{prog}: error: {error}")
        return error.code
    except KeyboardInterrupt:
        report(f"{prog}: interrupted")
        return Exit.INTERRUPTED
    except BrokenPipeError:  # `imagegen list --all | head`: the reader has gone, nothing more to say
        quiet_stdout()
        return Exit.ERROR
    except Exception as error:
        if os.environ.get("IMAGEGEN_DEBUG"):
            raise
        report(f"{prog}: error: unexpected {type(error).__name__}: {one_line(str(error), 300)}: a bug in imagegen; "
               "run it again with IMAGEGEN_DEBUG=1 to see where, and report it")
        return Exit.ERROR


def report(line: str) -> None:
    """One line on stderr, red on a terminal; never wrapped."""
    console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
