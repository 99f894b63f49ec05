"""`GET /api/openapi.json`: the HTTP API as an OpenAPI 3.1 document.

Built from the pydantic models the routes use (`triggers.api_models`, `JobSpec`,
`FoundryRequest`, `Manifest`), never written by hand, so it cannot drift from what the
routes accept and answer. Every error is a problem-details body (`Problem`). The
property-based API fuzz (tests/app/test_api_fuzz.py) runs Schemathesis from it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import azure.functions as func
from pydantic.json_schema import models_json_schema

from imagegen.core.settings import Settings
from imagegen.jobs.foundry_body import FoundryRequest
from imagegen.jobs.foundry_edits import FoundryEditRequest
from imagegen.jobs.spec import JobSpec
from imagegen.records.manifest import Manifest
from imagegen.records.review_book import ReviewDecision
from imagegen.service.process import current
from triggers import api_models as m
from triggers.job_listing import DEFAULT_TOP, MOST_TOP, SOURCES, STATUSES

bp = func.Blueprint()

MODELS = (JobSpec, FoundryRequest, FoundryEditRequest, ReviewDecision, Manifest, m.Problem, m.JobView, m.JobList, m.JobAccepted,
          m.CancelAccepted, m.ReviewAccepted, m.Health, m.ModelList, m.Alive, m.FoundryResponse, m.FoundryAccepted)
IMAGE = {"description": "The image", "content": {
    kind: {"schema": {"type": "string", "format": "binary"}} for kind in ("image/png", "image/jpeg", "image/webp")}}

PROBLEM = "application/problem+json"


def _ref(model) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problem(description: str, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {"description": description, "content": {PROBLEM: {"schema": _ref(m.Problem)}}}
    if headers:
        answer["headers"] = headers
    return answer


def _job_id() -> dict:
    return {"name": "id", "in": "path", "required": True, "description": "The job id",
            "schema": {"type": "string", "minLength": 1}}


# Answers every route may give: a failure of ours is a problem too, with nothing internal in it.
COMMON = {"500": _problem("A failure of ours; the details are in the log, not here")}
FUNCTION_KEYS: list[dict[str, list[str]]] = [{"functionKey": []}, {"functionKeyQuery": []}]


def operations(sign_in: str = "off", deployment_key: bool = False) -> dict[str, dict]:
    """Every route; with `sign_in` = `entra` the routes behind sign-in take an Entra token,
    not a function key, and the platform answers a caller without one."""
    if sign_in == "entra":
        KEYED = {"401": {"description": "Not signed in: answered by Container Apps authentication, before the app"}}
    else:
        KEYED = {"401": _problem("No valid key (function key in `x-functions-key` or `?code=`)")}
    job_404 = _problem("No such job")

    def generations(operation_id: str, summary: str) -> dict:
        """`POST /api/images/generations`, and the same route as Foundry's document spells it."""
        return {
            "operationId": operation_id, "summary": summary,
            # Sign-in does not guard this route (its clients send no Entra token): it takes the
            # deployment key when one is set, else function keys.
            "security": [{"deploymentKey": []}, {"deploymentApiKey": []}] if deployment_key else FUNCTION_KEYS,
            "parameters": [{"name": "timeout", "in": "query", "required": False,
                            "schema": {"type": "number", "minimum": 0, "maximum": 230, "default": 120}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(FoundryRequest)}}},
            "responses": {
                "200": _json(m.FoundryResponse, "The images, in Foundry's and OpenAI's shapes"),
                "202": _json(m.FoundryAccepted, "Not done within `timeout`: follow the job"),
                "400": _problem("A bad body, or every image blocked (`code: content_filter`)"),
                "401": _problem("No valid key: the deployment key (`Authorization: Bearer`, `api-key`) "
                                "or a function key"),
                "413": _problem("Over the body byte limit"),
                "502": _problem("Generation failed on every try (`code: generation_failed`)"),
                "503": _problem("The images could not be checked for safety (`code: safety_unavailable`)",
                                {"Retry-After": {"schema": {"type": "string"}}}),
                **COMMON}}

    return {
        "/api/jobs": {
            "post": {
                "operationId": "submit_job", "summary": "Submit a job",
                "description": "A job as JSON or YAML (docs/jobs.md), or text/plain with one prompt per line.",
                "parameters": [{"name": "name", "in": "query", "required": False, "schema": {"type": "string"},
                                "description": "The job's name, for a text/plain body"}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _ref(JobSpec)},
                    "text/plain": {"schema": {"type": "string"}}}},
                "responses": {"202": _json(m.JobAccepted, "Started; follow `Location` or `jobUrl`"),
                              "400": _problem("Not a valid job: `errors` names every bad field"),
                              "413": _problem("Over the job byte limit (`max_job_bytes`)"), **KEYED, **COMMON},
            },
            "get": {
                "operationId": "list_jobs", "summary": "Jobs, newest first, a page at a time",
                "description": "Every job (not its batches), newest first by creation time; ties by id. "
                               "Follow `continuationToken` until it is null to read them all: each job "
                               "shows once, and jobs started meanwhile show on the first page. Jobs whose "
                               "history retention purged (IMAGEGEN_RETENTION_DAYS) are not listed.",
                "parameters": [
                    {"name": "top", "in": "query", "required": False, "description": "Jobs a page",
                     "schema": {"type": "integer", "minimum": 1, "maximum": MOST_TOP, "default": DEFAULT_TOP}},
                    {"name": "continuationToken", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "The previous page's `continuationToken`, unchanged (opaque)"},
                    {"name": "status", "in": "query", "required": False, "schema": {"enum": list(STATUSES)},
                     "description": "Only jobs in this state, as `status` shows it"},
                    {"name": "source", "in": "query", "required": False, "schema": {"enum": list(SOURCES)},
                     "description": "Only jobs started this way"},
                    {"name": "namePrefix", "in": "query", "required": False, "schema": {"type": "string"},
                     "description": "Only jobs whose name starts with this"},
                    {"name": "createdAfter", "in": "query", "required": False,
                     "schema": {"type": "string", "format": "date-time"},
                     "description": "Only jobs created at or after this ISO 8601 time (a date, or no zone: UTC)"}],
                "responses": {"200": _json(m.JobList, "A page of jobs"),
                              "400": _problem("A bad parameter: `errors` names each, with its rule and value"),
                              "503": _problem("One page would read more instances than the list allows: "
                                              "narrow it with `createdAfter`"),
                              **KEYED, **COMMON},
            },
        },
        "/api/jobs/{id}": {"get": {
            "operationId": "get_job", "summary": "A job's status, progress and, when done, summary",
            "parameters": [_job_id()],
            "responses": {"200": _json(m.JobView, "The job"), "404": job_404, **KEYED, **COMMON}}},
        "/api/jobs/{id}/manifest": {"get": {
            "operationId": "get_manifest", "summary": "The job's manifest, written when it ends",
            "parameters": [_job_id()],
            "responses": {"200": _json(Manifest, "The manifest"), "404": _problem("No manifest (yet)"),
                          **KEYED, **COMMON}}},
        "/api/jobs/{id}/images/{variant}": {"get": {
            "operationId": "get_image", "summary": "One published image",
            "parameters": [_job_id(), {"name": "variant", "in": "path", "required": True,
                                       "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": {"description": "The image", "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}}}},
                "404": _problem("No such job, variant, or published image"), **KEYED, **COMMON}}},
        "/api/jobs/{id}/cancel": {"post": {
            "operationId": "cancel_job", "summary": "Stop a queued or running job",
            "parameters": [_job_id()],
            "responses": {"202": _json(m.CancelAccepted, "Cancelling: the job ends with a manifest"),
                          "404": job_404, "409": _problem("The job already ended"), **KEYED, **COMMON}}},
        "/api/jobs/{id}/published/{variant}": {"get": {
            "operationId": "get_published_image", "summary": "A reviewed image's copy in published/",
            "parameters": [_job_id(), {"name": "variant", "in": "path", "required": True,
                                       "schema": {"type": "string", "minLength": 1}}],
            "responses": {"200": IMAGE, "404": _problem("No such job, variant, or published copy"),
                          **KEYED, **COMMON}}},
        "/api/jobs/{id}/review": {"post": {
            "operationId": "review_job", "summary": "One pass of a review: approve, reject, finish",
            "parameters": [_job_id()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(ReviewDecision)}}},
            "responses": {"202": _json(m.ReviewAccepted, "The decisions, taken"),
                          "400": _problem("A bad decision: `errors` names every bad field"),
                          "404": job_404, "409": _problem("The job is not awaiting review"), **KEYED, **COMMON}}},
        "/api/images/generations": {"post": generations("generate_images",
                                                         "Azure AI Foundry / OpenAI images, synchronous when quick")},
        "/api/image/generations": {"post": generations(
            "generate_image", "The same, as Foundry's Stability document spells the route")},
        "/api/images/edits": {"post": {
            "operationId": "edit_images", "summary": "OpenAI's images.edit: image + mask + prompt, inpainted",
            # Guarded as the generations route is: the deployment key when one is set.
            "security": [{"deploymentKey": []}, {"deploymentApiKey": []}] if deployment_key else FUNCTION_KEYS,
            "parameters": [{"name": "timeout", "in": "query", "required": False,
                            "schema": {"type": "number", "minimum": 0, "maximum": 230, "default": 120}}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _ref(FoundryEditRequest)}}},
            "responses": {
                "200": _json(m.FoundryResponse, "The edited images, as generations answers"),
                "202": _json(m.FoundryAccepted, "Not done within `timeout`: follow the job"),
                "400": _problem("A bad form (`mask` without alpha, no `image`, ...), or every image blocked "
                                "(`code: content_filter`)"),
                "401": _problem("No valid key: the deployment key (`Authorization: Bearer`, `api-key`) "
                                "or a function key"),
                "502": _problem("Generation failed on every try (`code: generation_failed`)"),
                "503": _problem("The images could not be checked for safety (`code: safety_unavailable`)",
                                {"Retry-After": {"schema": {"type": "string"}}}),
                **COMMON}}},
        "/api/health": {"get": {
            "operationId": "get_health", "summary": "What the worker runs on (anonymous)", "security": [],
            "responses": {"200": _json(m.Health, "The default model, the catalog's models, device, safety provider and C2PA signer"),
                          "503": _json(m.Health, "Unhealthy: `problems` says why (a C2PA signer that cannot sign)"),
                          **COMMON}}},
        "/api/health/live": {"get": {
            "operationId": "get_health_live", "summary": "The worker answers (anonymous): what the platform's probes ask",
            "security": [], "responses": {"200": _json(m.Alive, "The host and its Python worker answer"), **COMMON}}},
        "/api/models": {"get": {
            "operationId": "list_models", "summary": "The models a job may name (`model`), with family and defaults",
            "responses": {"200": _json(m.ModelList, "The catalog, the default model first"), **KEYED, **COMMON}}},
        "/api/openapi.json": {"get": {
            "operationId": "get_openapi", "summary": "This document (anonymous)", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {
                "schema": {"type": "object"}}}}}}},
    }


def openapi_document(settings: Settings | None = None) -> dict:
    """The document for these settings (default: the app's): who may call what depends on
    `IMAGEGEN_SIGN_IN` and `IMAGEGEN_API_KEY`."""
    settings = settings or current().settings
    return _document(settings.sign_in, settings.api_key is not None)


@lru_cache(maxsize=4)
def _document(sign_in: str, deployment_key: bool) -> dict:
    _, schemas = models_json_schema([(model, "validation") for model in MODELS],
                                    ref_template="#/components/schemas/{model}")
    schemes: dict[str, dict] = {
        "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
        "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
    }
    if deployment_key:
        schemes["deploymentKey"] = {"type": "http", "scheme": "bearer",
                                    "description": "`IMAGEGEN_API_KEY`, on /api/images/generations, /api/image/generations "
                                                   "and /api/images/edits only"}
        schemes["deploymentApiKey"] = {"type": "apiKey", "in": "header", "name": "api-key"}
    if sign_in == "entra":
        schemes["entraSignIn"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                  "description": "An Entra ID access token for the app registration, checked by "
                                                 "Container Apps authentication (a browser signs in instead)"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Durable Diffusion", "version": "1",
                 "description": "Batch image generation on Azure Durable Functions. Every error is "
                                "RFC 9457 problem details (`Problem`). Jobs: docs/jobs.md."},
        "paths": operations(sign_in, deployment_key),
        "components": {"schemas": schemas["$defs"], "securitySchemes": schemes},
        "security": [{"entraSignIn": []}] if sign_in == "entra" else FUNCTION_KEYS,
    }


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(openapi_document(), indent=2), mimetype="application/json")
