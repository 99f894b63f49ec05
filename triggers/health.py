"""`GET /api/health` (anonymous): what the worker runs on, for people and monitors; 503 while
it cannot do its work (a C2PA signer that cannot sign), with the problem in public words.

`GET /api/health/live` (anonymous): 200 whenever the host and its Python worker answer. The
platform's probes use it (infra/modules/app.bicep): a signer that cannot sign is a reason to
look, not to restart the replica or take it out of the ingress, which would hide the
answer above and stop the gallery and the status routes too; images stay held back anyway.
"""

import azure.functions as func

from imagegen.service.operations import health
from imagegen.service.process import current
from triggers.api_models import Alive, Health
from triggers.responses import json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    answer = Health.model_validate(health(current()))
    return json_response(answer.model_dump(mode="json"), status=200 if answer.status == "ok" else 503)


@bp.route(route="health/live", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_health_live(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(Alive(status="ok").model_dump(mode="json"))
