"""Batches rendered by the GPU pool: the orders the control plane sends and the answers it gets.

In Azure the GPU work runs in an app of its own that scales to zero (docs/deploy.md, "Paying
for the GPU only while rendering"); the two apps meet in the storage account:

    control plane                                   GPU pool
    order_render ── order blob + `render-orders` ──→ render_order: generate_images
    read_answer  ←── outcome blob + `render-orders-outcomes` ─┘
    poisoned_order ←── `render-orders-poison` (the pool failed on the order five times)

(`render-orders` is `IMAGEGEN_RENDER_QUEUE`'s default; the other two take their names from it.)

Queue messages hold only the order's blob name (`RenderNotice`); the order and its outcome
are blobs beside each other under `renders/`. Every step is safe to repeat: the names are
deterministic, so a repeated order or answer overwrites, and the waiting orchestration
takes the first answer to each try and ignores any other.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

from imagegen.core.blob_names import render_order_ref, render_outcome_ref, render_queues
from imagegen.records.messages import RenderOrder, RenderOrdered, RenderOutcome, rendered_event
from imagegen.service import operations
from imagegen.service.services import Services

log = logging.getLogger(__name__)

JSON = "application/json"
MAX_DEQUEUE_COUNT = 5  # the queue trigger's default maxDequeueCount: tries before a message is poisoned


class RenderNotice(BaseModel):
    """A message on the orders queue or its outcomes queue: the order it is about."""

    order: str  # renders/….order.json


class RenderAnswer(BaseModel):
    """An outcome, addressed: raise `event` with `outcome` on the orchestration `instance_id`."""

    instance_id: str
    event: str
    outcome: RenderOutcome


def order_render(order: RenderOrder, services: Services) -> RenderOrdered:
    """Control plane: write the order, then queue its name for the GPU pool."""
    ref = render_order_ref(order.batch.job_id, order.batch.batch.id, order.attempt)
    services.store.put(ref, order.model_dump_json().encode(), JSON)
    orders, _, _ = render_queues(services.settings.render_queue)
    services.queues.send(orders, RenderNotice(order=ref).model_dump_json())
    return RenderOrdered(order=ref)


def read_order(message: str, services: Services) -> tuple[str, RenderOrder]:
    """The order a message on either queue names: its blob name and what it says."""
    ref = RenderNotice.model_validate_json(message).order
    return ref, RenderOrder.model_validate_json(services.store.get(ref))


def render_order(ref: str, order: RenderOrder, services: Services) -> RenderOutcome:
    """GPU pool: render one order and answer it. A batch that fails is answered with why,
    once (the orchestration decides whether to try again); only an answer that cannot be
    written raises, so the queue gives the order back (and poisons it after five tries)."""
    try:
        outcome = RenderOutcome(attempt=order.attempt, result=operations.generate_images(order.batch, services))
    except Exception as error:  # noqa: BLE001 - any failure of the batch is the batch's outcome
        log.exception("render order %s failed", ref)
        outcome = RenderOutcome(attempt=order.attempt, error=str(error) or type(error).__name__)
    services.store.put(render_outcome_ref(ref), outcome.model_dump_json().encode(), JSON)
    _, outcomes, _ = render_queues(services.settings.render_queue)
    services.queues.send(outcomes, RenderNotice(order=ref).model_dump_json())
    return outcome


def read_answer(message: str, services: Services) -> RenderAnswer:
    """Control plane: the outcome an answer on `render-outcomes` names, and whom it is for."""
    ref, order = read_order(message, services)
    outcome = RenderOutcome.model_validate_json(services.store.get(render_outcome_ref(ref)))
    return RenderAnswer(instance_id=order.instance_id, event=rendered_event(order.attempt), outcome=outcome)


def poisoned_order(message: str, services: Services) -> RenderAnswer:
    """Control plane: an order the GPU pool failed on `MAX_DEQUEUE_COUNT` times without
    answering (its replica crashed or ran out of memory each time) is answered as failed."""
    ref, order = read_order(message, services)
    outcome = RenderOutcome(attempt=order.attempt,
                            error=f"the GPU pool stopped on this batch {MAX_DEQUEUE_COUNT} times without an answer")
    services.store.put(render_outcome_ref(ref), outcome.model_dump_json().encode(), JSON)
    return RenderAnswer(instance_id=order.instance_id, event=rendered_event(order.attempt), outcome=outcome)
