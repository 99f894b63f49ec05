"""Shell completion with argcomplete: subcommands, options, `--status` values, and job ids
(the newest jobs the API lists) wherever a command takes one.

Enable it once per shell (README, "Shell completion"):

    eval "$(register-python-argcomplete imagegen)"                 # bash, zsh
    register-python-argcomplete --shell fish imagegen | source     # fish

The shell runs `imagegen` with `_ARGCOMPLETE` set; only then is argcomplete imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

# How long completing job ids may wait for the API, in seconds: a shell must not hang.
COMPLETION_TIMEOUT = 3.0


def complete_if_asked(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit, when this run is one."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:  # installed without it: offer nothing, and never run the command for the shell
        sys.exit(1)
    argcomplete.autocomplete(parser)


def recent_job_ids(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """Ids of the newest jobs starting with `prefix`; none when the API cannot be asked."""
    from imagegen.cli.connection import api_for
    from imagegen.cli.exits import CliError

    try:
        page = api_for(parsed_args).call_json("GET", "jobs", params={"top": "100"}, timeout=COMPLETION_TIMEOUT)
    except CliError:
        return []
    return [job["id"] for job in page.get("jobs") or [] if str(job.get("id", "")).startswith(prefix)]
