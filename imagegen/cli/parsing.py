"""The command line's parser: argparse, with usage errors as one line, and option types."""

from __future__ import annotations

import argparse
from typing import NoReturn

from imagegen.cli.exits import CliError, Exit


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2) that points at `--help`."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}; see `{self.prog} --help`", Exit.USAGE)


def positive_seconds(text: str) -> float:
    """`--timeout 2.5`: a number of seconds above 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return seconds


def at_least_one(text: str) -> int:
    """`--top 50`: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)
