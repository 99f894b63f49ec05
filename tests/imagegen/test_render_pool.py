"""The GPU pool's side and the control plane's (`imagegen.service.render_pool`) against Azurite,
the tiny model and the local checks: what goes on each queue, what each blob holds, and what
the waiting orchestration is told."""

from __future__ import annotations

import base64
import uuid

import pytest
from azure.storage.queue import QueueClient

from imagegen.core import telemetry
from imagegen.core.blob_names import render_queues
from imagegen.core.settings import Settings
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import batches, expand
from imagegen.records.messages import BatchRequest, RenderOrder, RenderOutcome
from imagegen.service import render_pool
from imagegen.service.faults import FaultyServices
from imagegen.service.services import Services

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def queue() -> str:
    return f"render-{uuid.uuid4().hex[:12]}"  # a queue of the test's own: tests share one Azurite


@pytest.fixture
def make_services(storage_connection_string, queue):
    made = []

    def make(services_class=Services, **settings) -> Services:
        services = services_class(Settings(storage_connection_string=storage_connection_string, model="tiny",
                                           safety_provider="local", render_queue=queue, **settings))
        made.append(services)
        return services

    yield make
    for services in made:
        services.close()


def order(name: str) -> RenderOrder:
    job = parse_job({"name": name, "prompts": [{"text": "a red bicycle"}],
                     "variants": {"seeds": 2, "sizes": ["64x64"], "steps": 2}})
    [batch] = batches(expand(job), 4)
    job_id = f"{name}-{uuid.uuid4().hex[:8]}"
    return RenderOrder(instance_id=f"{job_id}:{batch.id}", attempt=2, batch=BatchRequest(job_id=job_id, batch=batch))


def messages(connection: str, queue: str) -> list[str]:
    """What the Functions queue trigger would read: each message's base64 text, decoded."""
    client = QueueClient.from_connection_string(connection, queue)
    return [base64.b64decode(m.content).decode() for m in client.receive_messages(max_messages=32)]


def test_an_order_is_a_blob_and_its_name_on_the_orders_queue(make_services, storage_connection_string, queue):
    services, wanted = make_services(), order("ordered")
    ordered = render_pool.order_render(wanted, services)

    assert ordered.order == f"renders/{wanted.batch.job_id}/b000.2.order.json"
    assert RenderOrder.model_validate_json(services.store.get(ordered.order)) == wanted
    orders, _, _ = render_queues(queue)
    assert messages(storage_connection_string, orders) == [f'{{"order":"{ordered.order}"}}']


def test_the_pool_renders_an_order_and_the_control_plane_reads_the_answer_for_the_waiting_try(
        make_services, storage_connection_string, queue):
    control, pool, wanted = make_services(), make_services(), order("rendered")
    render_pool.order_render(wanted, control)
    [message] = messages(storage_connection_string, render_queues(queue)[0])

    ref, read = render_pool.read_order(message, pool)
    outcome = render_pool.render_order(ref, read, pool)
    assert outcome.error is None and outcome.result is not None
    assert [c.verdict.status for c in outcome.result.images] == ["safe", "safe"]
    assert all(pool.store.exists(c.ref) for c in outcome.result.images)

    [answer_message] = messages(storage_connection_string, render_queues(queue)[1])
    answer = render_pool.read_answer(answer_message, control)
    assert (answer.instance_id, answer.event) == (wanted.instance_id, "rendered-2")
    assert answer.outcome == outcome


def test_a_batch_that_fails_is_answered_with_why_and_the_message_is_done(make_services, storage_connection_string,
                                                                          queue):
    control = make_services()
    pool = make_services(FaultyServices, faults={"broken-*": "fail-always"})
    render_pool.order_render(order("broken"), control)
    [message] = messages(storage_connection_string, render_queues(queue)[0])

    ref, read = render_pool.read_order(message, pool)
    with telemetry.activity("generate_images", read.batch.model_dump(mode="json")):  # as the pool's function
        outcome = render_pool.render_order(ref, read, pool)  # no exception: the queue must not try it again

    assert outcome.result is None and "injected fault (fail-always)" in (outcome.error or "")
    [answer_message] = messages(storage_connection_string, render_queues(queue)[1])
    assert render_pool.read_answer(answer_message, control).outcome == outcome


def test_an_order_the_pool_gave_up_on_is_answered_failed_and_recorded(make_services, storage_connection_string, queue):
    control, wanted = make_services(), order("poisoned")
    ordered = render_pool.order_render(wanted, control)
    [message] = messages(storage_connection_string, render_queues(queue)[0])  # as the host moves it to -poison

    answer = render_pool.poisoned_order(message, control)

    assert (answer.instance_id, answer.event) == (wanted.instance_id, "rendered-2")
    assert answer.outcome.result is None and "5 times" in (answer.outcome.error or "")
    recorded = RenderOutcome.model_validate_json(control.store.get(ordered.order.replace(".order.", ".outcome.")))
    assert recorded == answer.outcome


def test_an_answer_names_only_an_order_blob():
    from imagegen.core.blob_names import render_outcome_ref

    with pytest.raises(ValueError, match="not a render order"):
        render_outcome_ref("outputs/job-1/v000.png")
