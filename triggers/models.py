"""`GET /api/models`: the models a job may name (`model:`), with their family, defaults and
whether this process has them loaded. The catalog is `IMAGEGEN_MODELS` (docs/models.md)."""

import azure.functions as func

from imagegen.service.operations import model_views
from imagegen.service.process import current
from triggers.api_models import ModelList
from triggers.responses import json_response, problems_on_failure

bp = func.Blueprint()


@bp.route(route="models", methods=["GET"])
@problems_on_failure
def list_models(req: func.HttpRequest) -> func.HttpResponse:
    services = current()
    answer = ModelList.model_validate({"default": services.models.default, "models": model_views(services)})
    return json_response(answer.model_dump(mode="json"))
