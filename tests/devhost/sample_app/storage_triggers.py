"""Blob and timer trigger functions of the devhost test app (filled in with the blob/timer triggers)."""

import azure.functions as func

bp = func.Blueprint()
