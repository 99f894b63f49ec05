"""`imagegen list`: jobs newest first, page by page.

`GET /api/jobs?top=&continuationToken=&status=` answers `{"jobs": [...], "continuationToken":
"<opaque>" | null}`; the next page is asked for with the token until it is null (`--all`)
or enough jobs were shown (`--top`). A page may hold fewer jobs than asked for, even none,
and still have a next one (the server filters each page of instances): only the token says
when the list ends.
"""

from __future__ import annotations

from collections.abc import Iterator

from imagegen.cli.api import Api
from imagegen.cli.exits import CliError

# The most jobs the API answers in one page (`top` from 1 to 200).
MOST_PER_PAGE = 200
DEFAULT_TOP = 20


def list_jobs(api: Api, *, top: int | None = DEFAULT_TOP, status: str | None = None) -> Iterator[dict]:
    """The newest `top` jobs (every job when `top` is None), optionally only those in
    `status`, yielded page by page as each page arrives."""
    left = top
    token: str | None = None
    tokens_seen: set[str] = set()
    while left is None or left > 0:
        page = api.call_json("GET", "jobs", params=page_query(left, token, status))
        jobs = page.get("jobs")
        if not isinstance(jobs, list):
            raise CliError(f"{api.url}/api/jobs answered no `jobs` list: is {api.url} the app's base URL?")
        shown = jobs if left is None else jobs[:left]
        yield from shown
        if left is not None:
            left -= len(shown)
        token = page.get("continuationToken")
        if not token:
            return
        if token in tokens_seen:
            raise CliError(f"{api.url}/api/jobs answered the same continuationToken twice; the listing stops "
                           "here: report it (the app's listing is at fault)")
        tokens_seen.add(token)


def page_query(left: int | None, token: str | None, status: str | None) -> dict[str, str]:
    query = {"top": str(MOST_PER_PAGE if left is None else min(left, MOST_PER_PAGE))}
    if token:
        query["continuationToken"] = token
    if status:
        query["status"] = status
    return query
