"""Which deployment the CLI talks to, and as whom: `--url`, `--key`, `--entra-scope` and
`--token` (or IMAGEGEN_URL, IMAGEGEN_KEY, IMAGEGEN_ENTRA_SCOPE, IMAGEGEN_TOKEN), accepted
before or after the subcommand."""

from __future__ import annotations

import argparse
import os

from imagegen.cli.api import DEFAULT_URL, Api, check_url
from imagegen.cli.parsing import Parser


def connection_options(before_command: bool) -> Parser:
    """The connection options, as a parent parser.

    Before the subcommand they default to None; after it they are parsed by the
    subcommand's parser with no default at all (SUPPRESS), so that it does not overwrite a
    value given before the subcommand. The environment is read later, by `api_for`: so
    `drop` can tell a URL that was given from the default one.
    """
    default = None if before_command else argparse.SUPPRESS
    options = Parser(add_help=False)
    options.add_argument("--url", default=default, help=f"the app's base URL (default: IMAGEGEN_URL or {DEFAULT_URL})")
    options.add_argument("--key", default=default, help="a function key (default: IMAGEGEN_KEY)")
    options.add_argument("--entra-scope", default=default, metavar="SCOPE",
                         help="with sign-in on: get an Entra token for SCOPE (api://<client id>/.default) "
                         "with your Azure login (default: IMAGEGEN_ENTRA_SCOPE)")
    options.add_argument("--token", default=default,
                         help="with sign-in on: an Entra access token to send as is (default: IMAGEGEN_TOKEN)")
    return options


def given_url(args: argparse.Namespace) -> str | None:
    """The URL given with --url or IMAGEGEN_URL; None when neither is."""
    return getattr(args, "url", None) or os.environ.get("IMAGEGEN_URL") or None


def api_for(args: argparse.Namespace) -> Api:
    """The API the options (or the environment) name."""
    given = given_url(args)
    url = check_url(given, "--url" if getattr(args, "url", None) else "IMAGEGEN_URL") if given else DEFAULT_URL
    return Api(url, getattr(args, "key", None) or os.environ.get("IMAGEGEN_KEY"),
               token=getattr(args, "token", None) or os.environ.get("IMAGEGEN_TOKEN"),
               entra_scope=getattr(args, "entra_scope", None) or os.environ.get("IMAGEGEN_ENTRA_SCOPE"))
