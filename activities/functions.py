"""The activities of the pipeline, registered under the names the orchestrators call.

Each reads its request model from the JSON the orchestrator sent, makes one call into the
function of the same name in `imagegen.service.operations` with the process's services, and returns its result model as JSON
(the Functions worker and devhost pass activity inputs and outputs as plain JSON).

Each runs inside its telemetry span (`imagegen.core.telemetry.activity`): one span per run,
under the job's trace, and log records made inside carry the job id.
"""

import azure.durable_functions as df

from imagegen.core import telemetry
from imagegen.records.messages import (
    ModerateImageRequest,
    ModerateTextRequest,
    NotifyJobRequest,
    PublishImagesRequest,
    ReadReviewPassesRequest,
    RenderOrder,
    WriteManifestRequest,
)
from imagegen.service import operations, render_pool
from imagegen.service.process import current

bp = df.Blueprint()


@bp.activity_trigger(input_name="request")
def moderate_text(request: dict) -> dict:
    with telemetry.activity("moderate_text", request):
        return operations.moderate_text(ModerateTextRequest.model_validate(request), current()).model_dump()


@bp.activity_trigger(input_name="request")
def moderate_image(request: dict) -> dict:
    with telemetry.activity("moderate_image", request):
        return operations.moderate_image(ModerateImageRequest.model_validate(request), current()).model_dump()


@bp.activity_trigger(input_name="request")
def order_render(request: dict) -> dict:
    """The batch goes to the GPU pool (activities/render_worker.py), which answers with an event."""
    with telemetry.activity("order_render", request):
        return render_pool.order_render(RenderOrder.model_validate(request), current()).model_dump()


@bp.activity_trigger(input_name="request")
def write_manifest(request: dict) -> dict:
    with telemetry.activity("write_manifest", request):
        return operations.write_manifest(WriteManifestRequest.model_validate(request), current()).model_dump()


@bp.activity_trigger(input_name="request")
def read_review_passes(request: dict) -> dict:
    with telemetry.activity("read_review_passes", request):
        return operations.read_review_passes(ReadReviewPassesRequest.model_validate(request), current()).model_dump(
            mode="json")


@bp.activity_trigger(input_name="request")
def publish_images(request: dict) -> dict:
    with telemetry.activity("publish_images", request):
        return operations.publish_images(PublishImagesRequest.model_validate(request), current()).model_dump()


@bp.activity_trigger(input_name="request")
def notify_job(request: dict) -> dict:
    with telemetry.activity("notify_job", request):
        return operations.notify_job(NotifyJobRequest.model_validate(request), current()).model_dump(mode="json")
