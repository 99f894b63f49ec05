"""The auth level of the routes behind sign-in, from `IMAGEGEN_SIGN_IN`.

With `entra`, Container Apps built-in authentication lets only signed-in callers (or Entra
access tokens for the app registration) reach these routes, so the Functions host asks for
no function key on top: a browser could not send one. That is the pattern Microsoft
describes for App Service / Container Apps authentication in front of Functions. Routes
that sign-in does not guard (health, OpenAPI, the Foundry route) set their own level.
"""

from __future__ import annotations

import azure.functions as func

from imagegen.core.settings import Settings


def routes_auth_level(settings: Settings) -> func.AuthLevel:
    return func.AuthLevel.ANONYMOUS if settings.sign_in == "entra" else func.AuthLevel.FUNCTION
