"""The four activities of the pipeline. Inputs and outputs are small JSON with blob names."""

import azure.durable_functions as df

from imagegen import operations

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def moderate_text(request: dict) -> list[dict]:
    return operations.moderate_texts(request["texts"])


@bp.activity_trigger(input_name="request")
def moderate_image(request: dict) -> dict:
    return operations.moderate_image(request["ref"], request.get("publish_to"))


@bp.activity_trigger(input_name="request")
def generate_images(request: dict) -> list[dict]:
    return operations.generate_images(request)


@bp.activity_trigger(input_name="request")
def write_manifest(request: dict) -> dict:
    return operations.write_manifest(request)
