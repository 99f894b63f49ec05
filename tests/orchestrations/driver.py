"""Play a job through today's orchestrators with devhost's pure durable core, no host.

`play(request, activities, events)` starts `generate_batch` and does what an engine
would, in memory: each activity call is answered by a scripted function (activity name ->
function of the request JSON returning the result, or raising `ActivityFailed`, or
returning `NO_ANSWER` for a call still running when the job ends), each
`render_batch` is played the same way to its end (its render orders answered by the GPU
pool, whose work is the scripted `generate_images`), the external events of the script are
raised when their moment comes, and durable timers fire once nothing else is left to
deliver (the clock then jumps to their time). Milliseconds a job; no HTTP, no storage.

What it returns is what a user or operator could see: every call scheduled with its
input (`Run.requests`), the custom statuses the job showed (`Run.progress`), its runtime
status and output (`Run.summary`), and the recording of every episode that the golden
histories keep (`Run.recording`, see golden.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any, Callable, Mapping, Sequence, TypeVar

import azure.durable_functions as df
from pydantic import BaseModel

from devhost.durable import history as h
from devhost.durable.core import (
    COMPLETED,
    TERMINAL_STATUSES,
    Episode,
    Message,
    OrchestrationState,
    TimerCall,
    run_episode,
)
from imagegen.core.settings import Settings
from imagegen.jobs.spec import parse_job
from imagegen.records.messages import (
    JobSummary,
    Progress,
    ReadReviewPassesRequest,
    RenderOrder,
    RenderOrdered,
    RenderOutcome,
    ReviewPassesResult,
    job_request,
    rendered_event,
    review_event,
)
from orchestrations.generate_batch import bp

T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=timezone.utc)
JOB_ID = "job-1"
STEP = timedelta(seconds=1)  # how long each answer takes to come back

Model = TypeVar("Model", bound=BaseModel)
Activity = Callable[[dict], Any]  # request JSON -> result (a model or JSON-able); raises ActivityFailed


class ActivityFailed(Exception):
    """Raised by a scripted activity: the call fails with this reason, as an activity's exception does."""


NO_ANSWER = object()  # returned by a scripted activity: the call is still running when the job ends

# The name of a `Raise` that is a review pass sent the way the review route sends one: the
# pass is recorded in the job's ledger of passes (which the `read_review_passes` activity
# reads, unless the script answers it), then the wake-up event the job's custom status
# names is raised.
REVIEW_PASS = "review pass"


@cache
def handles() -> dict[str, Callable[[str], str]]:
    """The SDK's handles of today's orchestrators, by registered name (stateless: made once)."""
    app = df.DFApp()
    app.register_functions(bp)
    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def request_of(job: dict, *, max_batch: int = 16, review: bool = False, notify_url: str = "") -> str:
    """The `JobRequest` JSON the submit route would start the job with, for a deployment with
    `IMAGEGEN_MAX_BATCH=max_batch`, `IMAGEGEN_REVIEW` on or off and `IMAGEGEN_NOTIFY_URL`."""
    settings = Settings(max_batch=str(max_batch), review=review, notify_url=notify_url)
    return job_request(parse_job(job), "http", settings=settings).model_dump_json()


@dataclass
class Raise:
    """An external event the script raises on the job's orchestration, as a person would: after
    the first of its episodes (following the previous event's) that changed what the job
    shows (its custom status) and for which `when` holds."""

    name: str
    payload: Any
    when: Callable[[Episode], bool]


def phase_is(phase: str) -> Callable[[Episode], bool]:
    """`when` for a `Raise`: the episode left the job in this phase (e.g. "awaiting review")."""
    return lambda episode: bool(episode.custom_status) and json.loads(episode.custom_status).get("phase") == phase


def started(name: str) -> Callable[[Episode], bool]:
    """`when` for a `Raise`: the episode started sub-orchestrations of this name (e.g. the batches)."""
    return lambda episode: any(call.name == name for call in episode.sub_orchestrations)


@dataclass
class Call:
    """One call an instance scheduled, in the order scheduled across the whole job."""

    instance_id: str
    kind: str  # "activity", "sub_orchestration", or "gpu_pool" (a batch the GPU pool rendered)
    name: str
    input: Any  # the request, as JSON
    at: datetime


@dataclass
class Run:
    """What playing one job did."""

    job_id: str
    recording: dict = field(default_factory=dict)  # instance id -> {"name", "episodes"} (golden.py's shape)
    log: list[Call] = field(default_factory=list)
    review_passes: list[dict] = field(default_factory=list)  # the job's ledger of review passes

    def episodes(self, instance_id: str | None = None) -> list[dict]:
        return self.recording[instance_id or self.job_id]["episodes"]

    @property
    def runtime_status(self) -> str:
        return self.episodes()[-1]["status"]

    @property
    def output(self) -> Any:
        return self.episodes()[-1]["output"]

    def summary(self) -> JobSummary:
        assert self.runtime_status == COMPLETED, f"the job ended {self.runtime_status}: {self.output}"
        return JobSummary.model_validate(self.output)

    def names(self, instance_id: str | None = None) -> list[str]:
        """The names of the calls one instance (default: the job) scheduled, in order."""
        return [call.name for call in self.log if call.instance_id == (instance_id or self.job_id)]

    def calls(self, name: str) -> list[Call]:
        """Every call named `name`, by any instance, in the order scheduled."""
        return [call for call in self.log if call.name == name]

    def requests(self, name: str, model: type[Model]) -> list[Model]:
        """Every request of calls named `name`, by any instance, in order, parsed through `model`."""
        return [model.model_validate(call.input) for call in self.calls(name)]

    def progress(self) -> list[Progress]:
        """Each custom status the job showed, in order (an episode that left it unchanged adds none)."""
        shown: list[dict] = []
        for episode in self.episodes():
            status = episode["custom_status"]
            if status is not None and (not shown or shown[-1] != status):
                shown.append(status)
        return [Progress.model_validate(status) for status in shown]


def play(request: str, activities: Mapping[str, Activity], events: Sequence[Raise] = (), *,
         job_id: str = JOB_ID, start: datetime = T0) -> Run:
    """Run the job to its end (or until it waits for something the script cannot give: an AssertionError)."""
    return _Player(handles(), activities, list(events), Run(job_id)).run("generate_batch", job_id, request, start)


@dataclass
class _Player:
    orchestrators: dict[str, Callable[[str], str]]
    activities: Mapping[str, Activity]
    events: list[Raise]
    result: Run

    def run(self, name: str, instance_id: str, input_json: str, start: datetime) -> Run:
        self._instance(name, instance_id, input_json, start)
        return self.result

    def _instance(self, name: str, instance_id: str, input_json: str, start: datetime) -> Episode:
        state = OrchestrationState(instance_id, name)
        episodes: list[dict] = []
        self.result.recording[instance_id] = {"name": name, "episodes": episodes}
        inbox = [Message("start", text=input_json)]
        timers: list[TimerCall] = []
        now = start
        while True:
            episode = run_episode(self.orchestrators[name], state, inbox, now)
            episodes.append({"at": h.format_time(now), "messages": [message_json(m) for m in inbox], **decisions(episode)})
            self.result.log += [Call(instance_id, "activity", a.name, _json(a.input), now) for a in episode.activities]
            self.result.log += [Call(instance_id, "sub_orchestration", s.name, _json(s.input), now)
                                for s in episode.sub_orchestrations]
            if episode.status in TERMINAL_STATUSES:
                return episode
            timers = [t for t in timers + episode.timers if t.message.event.get("TimerId") not in episode.cancelled_timers]
            now += STEP
            inbox = [message for call in episode.activities
                     for message in self._answer(instance_id, call.task_id, call.name, call.input, now)]
            shown = len(episodes) == 1 or episodes[-1]["custom_status"] != episodes[-2]["custom_status"]
            if instance_id == self.result.job_id and self.events and shown and self.events[0].when(episode):
                event = self.events.pop(0)
                if event.name == REVIEW_PASS:  # as the route does: record, then wake the job (this name and the next)
                    self.result.review_passes.append(event.payload)
                    wake = Progress.model_validate_json(episode.custom_status or "{}").review_wake
                    assert wake is not None, f"a review pass was sent to a job that takes none: {episode.custom_status}"
                    inbox += [Message("event", h.event_raised(review_event(n), json.dumps({"pass": len(
                        self.result.review_passes)}), now)) for n in (wake, wake + 1)]
                else:
                    inbox.append(Message("event", h.event_raised(event.name, json.dumps(event.payload), now)))
            for call in episode.sub_orchestrations:
                child = self._instance(call.name, call.instance_id, call.input, now)
                inbox.append(Message("event", h.sub_orchestration_completed(call.task_id, child.output, now)
                                     if child.status == COMPLETED else
                                     h.sub_orchestration_failed(call.task_id, json.loads(child.output), "", now)))
            if not inbox and timers:  # nothing else will come: the clock moves to the next timer
                due = min(h.parse_time(t.fire_at) for t in timers)
                now = max(now, due)
                inbox = [Message("event", {**t.message.event, "Timestamp": h.format_time(now)})
                         for t in timers if h.parse_time(t.fire_at) == due]
                timers = [t for t in timers if h.parse_time(t.fire_at) != due]
            if not inbox:
                raise AssertionError(f"{instance_id} waits for nothing the script can give: {episodes[-1]}")

    def _answer(self, instance_id: str, task_id: int, name: str, input_json: str | None,
                now: datetime) -> list[Message]:
        if name == "read_review_passes" and name not in self.activities:
            after = ReadReviewPassesRequest.model_validate(_json(input_json)).after
            result = ReviewPassesResult.model_validate({"passes": self.result.review_passes[after:]})
            return [Message("event", h.task_completed(task_id, result.model_dump_json(), now))]
        if name == "order_render":
            return self._render_on_gpu_pool(instance_id, task_id, input_json, now)
        if name not in self.activities:
            raise AssertionError(f"the script has no answer for activity {name}")
        try:
            result = self.activities[name](_json(input_json))
        except ActivityFailed as error:
            return [Message("event", h.task_failed(task_id, str(error), "", now))]
        if result is NO_ANSWER:
            return []
        text = result.model_dump_json() if isinstance(result, BaseModel) else json.dumps(result)
        return [Message("event", h.task_completed(task_id, text, now))]

    def _render_on_gpu_pool(self, instance_id: str, task_id: int, input_json: str | None,
                            now: datetime) -> list[Message]:
        """The order is queued, and the GPU pool answers it as the scripted `generate_images`
        does (its call is logged under that name, by the ordering instance): the event
        `rendered-{attempt}` with the images, or with why it made none; NO_ANSWER: never.
        A scripted `order_render`, when there is one, is asked first: raising
        `ActivityFailed`, the order fails (storage refused it) and nothing is rendered."""
        order = RenderOrder.model_validate(_json(input_json))
        if "order_render" in self.activities:
            try:
                self.activities["order_render"](_json(input_json))
            except ActivityFailed as error:
                return [Message("event", h.task_failed(task_id, str(error), "", now))]
        self.result.log.append(Call(instance_id, "gpu_pool", "generate_images", order.batch.model_dump(mode="json"),
                                    now))
        queued = Message("event", h.task_completed(task_id, RenderOrdered(order="renders/order.json").model_dump_json(),
                                                   now))
        try:
            made = self.activities["generate_images"](order.batch.model_dump(mode="json"))
        except ActivityFailed as error:
            made = RenderOutcome(attempt=order.attempt, error=str(error))
        if made is NO_ANSWER:
            return [queued]
        outcome = made if isinstance(made, RenderOutcome) else RenderOutcome(attempt=order.attempt, result=made)
        return [queued, Message("event", h.event_raised(rendered_event(order.attempt), outcome.model_dump_json(), now))]


def decisions(episode: Episode) -> dict:
    """What one episode decided, as the golden histories record it: each call with its input."""
    return {
        "calls": [["activity", a.name, _json(a.input)] for a in episode.activities]
        + [["sub_orchestration", s.name, s.instance_id, _json(s.input)] for s in episode.sub_orchestrations],
        "timers": len(episode.timers),
        "status": episode.status,
        "output": _json(episode.output),
        "custom_status": _json(episode.custom_status),
    }


def message_json(message: Message) -> dict:
    return {"kind": message.kind, "event": message.event, "text": message.text}


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None

