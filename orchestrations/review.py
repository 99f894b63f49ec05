"""The review step of `generate_batch`: wait for people to approve or reject the images.

Durable Functions' human-interaction pattern: `review` events raced with a durable timer
(and with the job's `cancel` event). Each event is one pass of decisions; approved images
are published at once (a server-side copy, by blob name: no image bytes in history), and
the manifest is rewritten so the gallery and the API see every pass land. The wait ends
when every `ok` variant is decided, on `finish`, at the timeout (undecided variants then
get `on_timeout`) or on cancel.

Replay-safe: time from `context.current_utc_datetime`, decisions from the event history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

import azure.durable_functions as df

from imagegen.jobs.spec import ReviewSpec
from imagegen.records.messages import NotifyJobRequest, PublishImagesRequest, PublishImagesResult, WriteManifestRequest
from imagegen.records.review_book import ReviewBook, ReviewDecision

# Publishing is a copy inside one storage account: retried a few times, a few seconds apart.
PUBLISH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=3)


def await_review(context: df.DurableOrchestrationContext, *, spec: dict, outputs: dict[str, str | None],
                 progress, cancel, write_manifest: Callable[[dict, dict], WriteManifestRequest],
                 notify: NotifyJobRequest | None):
    """Run the review (a generator: `yield from` it). `outputs`: variant id -> outputs/ ref of
    every ok variant, in job order; `write_manifest(review, decisions)` builds the
    write_manifest activity's request. Returns (review state, ReviewBook, reasons)."""
    review = ReviewSpec.model_validate(spec)
    book = ReviewBook(reviewable=list(outputs))
    deadline = context.current_utc_datetime + timedelta(seconds=review.timeout_seconds())
    state = {"state": "awaiting", "timeout": review.timeout, "on_timeout": review.on_timeout,
             "deadline": deadline.isoformat(), "ended_by": None}
    reasons: list[str] = []

    def show(phase: str) -> None:
        progress.phase = phase
        progress.review = book.counts()
        progress.deadline = state["deadline"]
        context.set_custom_status(progress.model_dump())

    def publish(approved: list[str]):
        if not approved:
            return
        show("publishing")
        try:
            result = yield context.call_activity_with_retry("publish_images", PUBLISH_RETRY, PublishImagesRequest(
                job_id=context.instance_id, images={v: outputs[v] for v in approved}).model_dump())
        except Exception as error:  # recorded, not fatal: the decision stands, the copy can be redone
            reason = str(error).split(" \n ", 1)[0].strip() or type(error).__name__
            reasons.append(f"publishing {', '.join(approved)} failed: {reason}")
            return
        book.mark_published(PublishImagesResult.model_validate(result).published)

    # 1. Write the manifest of what is to be reviewed (the gallery and the route read it),
    #    then say so: status awaiting_review.
    yield context.call_activity("write_manifest", write_manifest(state, book.decisions).model_dump())
    show("awaiting review")
    # 2. Tell people. Raced with the decisions below, never waited for alone: a slow or
    #    broken webhook must not hold the review (the activity records how it went).
    told = None
    if notify is not None:
        told = context.call_activity("notify_job", notify.model_copy(update={
            "event": "awaiting_review", "status": "awaiting_review", "counts": {**notify.counts, **book.counts()},
        }).model_dump())

    # 3. Passes of decisions, raced with the timer and cancel.
    timer = context.create_timer(deadline)
    decision_event = context.wait_for_external_event("review")
    while state["ended_by"] is None:
        waiting = [decision_event, timer]
        waiting += [task for task in (cancel, told) if task is not None and not task.is_completed]
        winner = yield context.task_any(waiting)
        if winner is told:
            continue
        if winner is cancel:
            state["ended_by"] = "cancel"
            reasons.append("cancelled by user while awaiting review")
            break
        if winner is timer:
            yield from publish(book.time_out(review.on_timeout, context.current_utc_datetime.isoformat(),
                                             review.timeout))
            state["ended_by"] = "timeout"
            break
        decision = ReviewDecision.model_validate(decision_event.result)
        decision_event = context.wait_for_external_event("review")
        yield from publish(book.apply(decision))
        if decision.finish:
            state["ended_by"] = "finish"
        elif not book.undecided():
            state["ended_by"] = "all decided"
        else:
            yield context.call_activity("write_manifest", write_manifest(state, book.decisions).model_dump())
            show("awaiting review")
    if not timer.is_completed:
        timer.cancel()
    state["state"] = "cancelled" if state["ended_by"] == "cancel" else "done"
    return state, book, reasons
