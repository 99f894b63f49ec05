"""The deployment key for `POST /api/images/generations` (`IMAGEGEN_API_KEY`).

Clients written for Azure AI Foundry send `Authorization: Bearer <key>`, Azure OpenAI
clients `api-key: <key>`, Functions clients `x-functions-key` or `?code=`. Neither of the
first two reaches a function-level route (the Functions host reads only the last two), so
with a deployment key set the route is anonymous at the host and checks the key here,
in any of the four places, in constant time. Without one, function keys guard it as they
guard every route.
"""

from __future__ import annotations

import hmac

import azure.functions as func

from triggers.responses import problem


def presented_keys(req: func.HttpRequest) -> list[str]:
    """Every key the request carries, wherever a known client puts it."""
    keys = [req.headers.get("api-key"), req.headers.get("x-functions-key"), req.params.get("code")]
    scheme, _, credential = (req.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        keys.append(credential.strip())
    return [key for key in keys if key]


def holds_key(req: func.HttpRequest, expected: str) -> bool:
    # Every presented key is compared, each in constant time: the answer's timing says
    # nothing about how much of a guess was right.
    matches = [hmac.compare_digest(key.encode(), expected.encode()) for key in presented_keys(req)]
    return any(matches)


def unauthorized() -> func.HttpResponse:
    response = problem(401, "Unauthorized", "Send the deployment key as `Authorization: Bearer <key>`, "
                       "`api-key: <key>`, `x-functions-key: <key>` or `?code=<key>`.", code="invalid_api_key")
    response.headers["WWW-Authenticate"] = 'Bearer realm="images"'
    return response
