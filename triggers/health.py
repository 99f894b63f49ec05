"""`GET /api/health` (anonymous): what the worker runs on, for probes and people."""

import azure.functions as func

from imagegen.service.operations import health
from imagegen.service.process import current
from triggers.api_models import Health
from triggers.responses import json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(Health.model_validate(health(current())).model_dump(mode="json"))
