"""HTTP functions of the devhost test app: starters over the durable client, and route checks."""

import json
import os

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()


def _json(value, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(value), status_code=status, mimetype="application/json")


@bp.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], req.route_params.get("instance_id"),
                                         json.loads(body) if body else None)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="run/{name}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def run_and_wait(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["name"], None, json.loads(body) if body else None)
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=20000, retry_interval_in_milliseconds=100)


@bp.route(route="status/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def client_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"], show_input=True)
    if status.runtime_status is None:  # the SDK's answer for an unknown instance
        return _json({"error": f"no instance {req.route_params['instance_id']}"}, 404)
    return _json(status.to_json())


@bp.route(route="listed/{prefix}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def listed_by_the_sdk(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """What the SDK's own list call returns (one request: one page of the management API)."""
    statuses = await client.get_status_by(instance_id_prefix=req.route_params["prefix"])
    return _json([status.instance_id for status in statuses])


@bp.route(route="approve/{instance_id}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def approve(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    await client.raise_event(req.route_params["instance_id"], "Approval", req.get_json())
    return _json({"raised": "Approval"}, 202)


@bp.route(route="items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"special": True})


@bp.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"id": int(req.route_params["id"])})


@bp.route(route="items/{name:alpha}", methods=["GET", "DELETE"])
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"name": req.route_params["name"], "method": req.method})


@bp.route(route="files/{*path}", methods=["GET"])
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"path": req.route_params.get("path", "")})


@bp.route(route="greet/{name?}", methods=["GET"])
def greet(req: func.HttpRequest) -> str:
    return f"hello, {req.route_params.get('name', 'world')}"


@bp.route(route="echo", methods=["POST", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"method": req.method, "url": req.url, "header": req.headers.get("x-test"),
                  "params": dict(req.params), "body": req.get_body().decode()})


@bp.route(route="crash", methods=["GET"])
def crash(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("crash raised on purpose")


@bp.route(route="slow_async", methods=["GET"])
async def slow_async(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("async ok")


@bp.route(route="secret", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("function level ok")


@bp.route(route="admin_only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin level ok")


@bp.function_name("named_output")
@bp.route(route="named", methods=["GET"])
@bp.generic_output_binding(arg_name="res", type="http")
def named_output(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse("set on the named output", status_code=201))


@bp.route(route="settings/{name}", methods=["GET"])
def app_setting(req: func.HttpRequest) -> func.HttpResponse:
    """Shows how devhost applied local.settings.json; only SAMPLE_* names, never real settings."""
    name = req.route_params["name"]
    if not name.startswith("SAMPLE_"):
        return _json({"error": f"only SAMPLE_* settings are shown, got {name!r}"}, 403)
    return _json({name: os.environ.get(name)})


@bp.route(route="whoami", methods=["GET"])
def whoami(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _json({"function": context.function_name, "has_invocation_id": bool(context.invocation_id)})
