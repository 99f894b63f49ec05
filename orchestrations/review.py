"""The review step of `generate_batch`: wait for people to approve or reject the images.

Durable Functions' human-interaction pattern: wake-up events raced with a durable timer
(and with the job's `cancel` event). Each pass of decisions is recorded by the review route
in the job's ledger (`manifests/{job}.review-passes.json`) and read back here by the
`read_review_passes` activity; approved images are published at once (a server-side copy,
by blob name: no image bytes in history), and the manifest is rewritten so the gallery and
the API see every pass land. The wait ends when every `ok` variant is decided, on `finish`,
at the timeout (undecided variants then get `on_timeout`) or on cancel.

Replay-safe: time from `context.current_utc_datetime`, decisions from activity results.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

import azure.durable_functions as df

from imagegen.jobs.spec import ReviewSpec
from imagegen.records.manifest import ManifestReview
from imagegen.records.messages import (
    NotifyJobRequest,
    Progress,
    PublishImagesRequest,
    PublishImagesResult,
    ReadReviewPassesRequest,
    ReviewPassesResult,
    WriteManifestRequest,
    review_event,
)
from imagegen.records.review_book import ReviewBook

# Publishing is a copy inside one storage account: retried a few times, a few seconds apart.
PUBLISH_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2_000, max_number_of_attempts=3)


def await_review(context: df.DurableOrchestrationContext, *, spec: ReviewSpec, outputs: dict[str, str],
                 progress: Progress, cancel: df.Task,
                 write_manifest: Callable[[ManifestReview, ReviewBook], WriteManifestRequest],
                 notify: NotifyJobRequest | None):
    """Run the review (a generator: `yield from` it). `outputs`: variant id -> outputs/ ref of
    every ok variant, in job order; `write_manifest(review, book)` builds the write_manifest
    activity's request. Returns (the review as the manifest records it, ReviewBook, reasons)."""
    review = spec
    book = ReviewBook(reviewable=list(outputs))
    deadline = context.current_utc_datetime + timedelta(seconds=review.timeout_seconds())
    state = ManifestReview(state="awaiting", timeout=review.timeout, on_timeout=review.on_timeout,
                           deadline=deadline)
    reasons: list[str] = []

    wake = 0  # the review's wake-up events are named review-0, review-1, ...: each name waited for once

    def show(phase) -> None:
        progress.phase = phase
        progress.review = book.counts()
        progress.deadline = deadline.isoformat()
        progress.review_wake = wake if state.ended_by is None else None
        context.set_custom_status(progress.model_dump(mode="json"))

    def publish(approved: list[str]):
        if not approved:
            return
        show("publishing")
        try:
            result = yield context.call_activity_with_retry("publish_images", PUBLISH_RETRY, PublishImagesRequest(
                job_id=context.instance_id, images={v: outputs[v] for v in approved}).model_dump(mode="json"))
        except Exception as error:  # recorded, not fatal: the decision stands, the copy can be redone
            reason = str(error).split(" \n ", 1)[0].strip() or type(error).__name__
            reasons.append(f"publishing {', '.join(approved)} failed: {reason}")
            return
        book.mark_published(PublishImagesResult.model_validate(result).published)

    # 1. Write the manifest of what is to be reviewed (the gallery and the route read it),
    #    then say so: status awaiting_review.
    yield context.call_activity("write_manifest", write_manifest(state, book).model_dump(mode="json"))
    show("awaiting review")
    # 2. Tell people. Raced with the decisions below, never waited for alone: a slow or
    #    broken webhook must not hold the review (the activity records how it went).
    told = None
    if notify is not None:
        told = context.call_activity("notify_job", notify.model_copy(update={
            "event": "awaiting_review", "status": "awaiting_review",
            "counts": {**notify.counts, **book.counts().model_dump()},
        }).model_dump(mode="json"))

    # 3. Passes of decisions, raced with the timer and cancel. A pass is recorded by the route
    #    in the job's ledger of passes, then the route raises the wake-up event the custom
    #    status names; each wake-up reads every pass recorded since the last read, in the
    #    order they were recorded (the first decision on an image wins). Why not the pass as
    #    the event itself: azure-functions-durable 1.7.0 keeps an event that arrives while
    #    nobody waits in one slot per name, overwritten by the next and never removed, so
    #    passes were lost and every later wait on that name returned at once (the SDK's
    #    issue #507). A name waited for once, and a payload that does not matter, make both
    #    harmless. The next name is shown in the same episode that schedules the read: a
    #    route that still sees the old name recorded its pass before the read runs.
    timer = context.create_timer(deadline)
    seen = 0  # passes read from the ledger so far
    woken = context.wait_for_external_event(review_event(wake))
    while state.ended_by is None:
        # A cancel that came while this loop published or wrote is already completed: it ends the
        # review now (task_any of a completed task would not say which one won).
        winner = cancel if cancel.is_completed else (yield context.task_any(
            [woken, timer, cancel, *([told] if told is not None and not told.is_completed else [])]))
        if winner is told:
            continue
        if winner is cancel:
            state.ended_by = "cancel"
            reasons.append("cancelled by user while awaiting review")
            break
        if winner is woken:
            wake += 1
            woken = context.wait_for_external_event(review_event(wake))
        show("awaiting review")
        # Passes recorded before the timer fired still count.
        result = yield context.call_activity("read_review_passes", ReadReviewPassesRequest(
            job_id=context.instance_id, after=seen).model_dump(mode="json"))
        passes = ReviewPassesResult.model_validate(result).passes
        seen += len(passes)
        for decision in passes:
            yield from publish(book.apply(decision))
            if decision.finish:
                state.ended_by = "finish"
                break
        if state.ended_by is None and not book.undecided():
            state.ended_by = "all decided"
        if state.ended_by is None and winner is timer:
            yield from publish(book.time_out(review.on_timeout, deadline.isoformat(), review.timeout))
            state.ended_by = "timeout"
        if state.ended_by is None and passes:
            yield context.call_activity("write_manifest", write_manifest(state, book).model_dump(mode="json"))
            show("awaiting review")
    if not timer.is_completed:
        timer.cancel()
    progress.review_wake = None  # decisions are no longer taken
    state.state = "cancelled" if state.ended_by == "cancel" else "done"
    return state, book, reasons
