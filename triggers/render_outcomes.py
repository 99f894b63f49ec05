"""The GPU pool's answers, turned into the events the waiting `render_batch` orchestrations take.

The GPU pool (activities/render_worker.py) answers each order on `render-orders-outcomes`; an
order it failed on five times without answering lands on `render-orders-poison`, and is answered
here as failed, so no batch waits for an answer that will never come (and its orchestration
gives up after `RENDER_DEADLINE` besides). See `imagegen.service.render_pool`.
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from imagegen.core.blob_names import render_queues
from imagegen.service import render_pool
from imagegen.service.process import current

log = logging.getLogger(__name__)


def blueprint(render_queue: str) -> df.Blueprint:
    """The two triggers, on the queues `render_queue` (`IMAGEGEN_RENDER_QUEUE`) names."""
    bp = df.Blueprint()
    _, outcomes, poisoned = render_queues(render_queue)

    @bp.queue_trigger(arg_name="message", queue_name=outcomes, connection="AzureWebJobsStorage")
    @bp.durable_client_input(client_name="client")
    async def take_render_outcome(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
        await deliver(client, render_pool.read_answer(message.get_body().decode(), current()))

    @bp.queue_trigger(arg_name="message", queue_name=poisoned, connection="AzureWebJobsStorage")
    @bp.durable_client_input(client_name="client")
    async def fail_poisoned_render(message: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
        answer = render_pool.poisoned_order(message.get_body().decode(), current())
        log.error("the GPU pool failed %s times on a batch of %s; its try %s is answered as failed",
                  render_pool.MAX_DEQUEUE_COUNT, answer.instance_id, answer.outcome.attempt)
        await deliver(client, answer)

    return bp


async def deliver(client: df.DurableOrchestrationClient, answer: render_pool.RenderAnswer) -> None:
    """Raise the answer's event; an orchestration that no longer runs (it gave up on the
    try, or its job was purged) takes no answer, and that is no failure of this message."""
    try:
        await client.raise_event(answer.instance_id, answer.event, answer.outcome.model_dump(mode="json"))
    except Exception:
        status = await client.get_status(answer.instance_id)
        if status.runtime_status in (df.OrchestrationRuntimeStatus.Running, df.OrchestrationRuntimeStatus.Pending):
            raise  # it still waits: the queue tries this message again
        log.info("%s of %s came after it stopped waiting (%s); dropped", answer.event, answer.instance_id,
                 status.runtime_status.value if status.runtime_status else "not found")
