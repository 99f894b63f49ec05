"""JSON and problem-details (RFC 9457) responses for the HTTP API."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from typing import Any

import azure.functions as func

from imagegen.core.nesting import MAX_DEPTH
from imagegen.core.types import FieldError

log = logging.getLogger(__name__)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=2, default=str), status_code=status,
                             mimetype="application/json", headers=headers)


def problem(status: int, title: str, detail: str, errors: list[FieldError] | None = None,
            **extra: Any) -> func.HttpResponse:
    """An error a client can act on: what went wrong, and every bad field with its rule."""
    from triggers.api_models import Problem  # the model the API document describes

    body = Problem(title=title, status=status, detail=detail, errors=errors or None, **extra)
    return func.HttpResponse(json.dumps(body.model_dump(mode="json", exclude_none=True), indent=2),
                             status_code=status, mimetype="application/problem+json")


def invalid_job(errors: list[FieldError]) -> func.HttpResponse:
    count = len(errors)
    detail = f"The job has {count} problem{'s' if count != 1 else ''}: " + "; ".join(error.message for error in errors)
    if any(error.rule == "max_job_bytes" for error in errors):
        return problem(413, "Job too large", detail, errors)
    return problem(400, "Invalid job", detail, errors)


def not_found(job_id: str) -> func.HttpResponse:
    return problem(404, "Job not found", f"No job with id {job_id!r} exists.")


def internal_error() -> func.HttpResponse:
    """What a client sees of a failure of ours: the status, never the exception's text."""
    return problem(500, "Internal error", "The server could not handle this request; the failure was logged.")


def unreadable_request(error: RecursionError | MemoryError) -> func.HttpResponse:
    """What a client sees when reading its request ran out of stack or memory. Every body is
    measured before it is parsed (`imagegen.core.nesting`, the body size limits), so this is
    the net under those checks; in a route only what a client sent gets that deep or large.
    The exception's own text (a frame, a size) is never shown."""
    if isinstance(error, RecursionError):
        message = (f"the request nests too deeply to be read; the limit is {MAX_DEPTH} levels of lists "
                   "and mappings one inside another")
        return problem(400, "Request nested too deeply", message[0].upper() + message[1:] + ".",
                       [FieldError(path="", rule="max_depth", message=message)])
    return problem(413, "Request too large", "The request needs more memory to read than this server "
                   "can give it; send a smaller body.")


def problems_on_failure(route):
    """Wrap an HTTP function so that any exception it lets escape is logged in full and
    answered as problem details: `RecursionError` and `MemoryError` (what a hostile body
    causes) as a 400 or 413 that names the problem, anything else as a generic 500. One
    place for the whole API, so no route can leak an internal message (a path, an SDK's
    TypeError) to a client."""
    if inspect.iscoroutinefunction(route):
        @functools.wraps(route)
        async def guarded(*args, **kwargs):
            try:
                return await route(*args, **kwargs)
            except (RecursionError, MemoryError) as error:
                log.exception("%s could not read its request", route.__name__)
                return unreadable_request(error)
            except Exception:  # noqa: BLE001 - the point: nothing unexpected reaches the client
                log.exception("%s failed", route.__name__)
                return internal_error()
    else:
        @functools.wraps(route)
        def guarded(*args, **kwargs):
            try:
                return route(*args, **kwargs)
            except (RecursionError, MemoryError) as error:
                log.exception("%s could not read its request", route.__name__)
                return unreadable_request(error)
            except Exception:  # noqa: BLE001 - the point: nothing unexpected reaches the client
                log.exception("%s failed", route.__name__)
                return internal_error()
    return guarded
