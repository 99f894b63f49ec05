"""JSON and problem-details (RFC 9457) responses for the HTTP API."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from imagegen.types import FieldError


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, indent=2, default=str), status_code=status,
                             mimetype="application/json", headers=headers)


def problem(status: int, title: str, detail: str, errors: list[FieldError] | None = None,
            **extra: Any) -> func.HttpResponse:
    """An error a client can act on: what went wrong, and every bad field with its rule."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = [error.model_dump() for error in errors]
    body.update(extra)
    return func.HttpResponse(json.dumps(body, indent=2), status_code=status,
                             mimetype="application/problem+json")


def invalid_job(errors: list[FieldError]) -> func.HttpResponse:
    count = len(errors)
    return problem(400, "Invalid job", f"The job has {count} problem{'s' if count != 1 else ''}: "
                   + "; ".join(error.message for error in errors), errors)


def not_found(job_id: str) -> func.HttpResponse:
    return problem(404, "Job not found", f"No job with id {job_id!r} exists.")
