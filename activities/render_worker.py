"""The GPU pool's one function: render the batches ordered on the render queue.

Not an activity, though it does an activity's work: the GPU pool is an app of its own that
scales to zero while no batch is waiting (docs/deploy.md, "Paying for the GPU only while
rendering"), and Durable Functions hands an activity to any app on the task hub, with no
way to keep GPU work on the GPU app. So the orchestration orders each batch on a queue
(`IMAGEGEN_RENDER_QUEUE`), this function renders it (`imagegen.service.render_pool`, the
same `generate_images` the activity ran) and answers on `<queue>-outcomes`, which
`triggers/render_outcomes.py` turns back into the event the orchestration waits for.

The app registers this blueprint alone with `IMAGEGEN_APP_ROLE=render`, besides the rest
with `all` (one app: local runs, tests, `make demo`). A function of the queue's name, so
the trigger names it as set.
"""

import azure.durable_functions as df
import azure.functions as func

from imagegen.core import telemetry
from imagegen.core.blob_names import render_queues
from imagegen.service import render_pool
from imagegen.service.process import current


def blueprint(render_queue: str) -> df.Blueprint:
    bp = df.Blueprint()
    orders, _, _ = render_queues(render_queue)

    @bp.queue_trigger(arg_name="message", queue_name=orders, connection="AzureWebJobsStorage")
    def render_order(message: func.QueueMessage) -> None:
        services = current()
        ref, order = render_pool.read_order(message.get_body().decode(), services)
        # The span keeps the activity's name and request: traces and bench/ read GPU time from it.
        with telemetry.activity("generate_images", order.batch.model_dump(mode="json")):
            render_pool.render_order(ref, order, services)

    return bp
