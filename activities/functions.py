"""The four activities of the pipeline. Inputs and outputs are small JSON with blob names.

Each runs inside its telemetry span (`imagegen.telemetry.activity`): one span per run,
under the job's trace, and log records made inside carry the job id.
"""

import azure.durable_functions as df

from imagegen import operations, telemetry

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def moderate_text(request: dict) -> list[dict]:
    with telemetry.activity("moderate_text", request):
        return operations.moderate_texts(request["texts"])


@bp.activity_trigger(input_name="request")
def moderate_image(request: dict) -> dict:
    with telemetry.activity("moderate_image", request):
        return operations.moderate_image(request["ref"], request.get("publish_to"))


@bp.activity_trigger(input_name="request")
def generate_images(request: dict) -> list[dict]:
    with telemetry.activity("generate_images", request):
        return operations.generate_images(request)


@bp.activity_trigger(input_name="request")
def write_manifest(request: dict) -> dict:
    with telemetry.activity("write_manifest", request):
        return operations.write_manifest(request)
