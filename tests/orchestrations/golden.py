"""Golden histories of `generate_batch`: record them once, replay them against today's code.

A recording is what devhost's pure core (`devhost.durable.core.run_episode`) saw and did
for every instance of one job — the orchestration and each `render_batch` — episode by
episode: the messages delivered (activity results, sub-orchestration results, timer
fires, the cancel event) and what the orchestrator decided (the calls it scheduled, its
status, output and custom status). Activities are not run: `respond` answers each call
with the result the real activity would give, in today's message shapes.

Replaying feeds the recorded messages to today's orchestrators and checks they decide
the same: the same calls in the same order, the same status, and an output that still
holds everything recorded. A change that fails here would break the replay of instances
in flight in Azure when it is deployed. If the change is meant to (a new shape), say so
in the change and regenerate: `.venv/bin/python -m tests.orchestrations.golden`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import azure.durable_functions as df

from devhost.durable import history as h
from devhost.durable.core import TERMINAL_STATUSES, Message, OrchestrationState, run_episode
from imagegen.core.types import Verdict
from imagegen.jobs.spec import parse_job
from imagegen.records.messages import (
    BatchRequest,
    CheckedImage,
    GenerateImagesResult,
    HeldImage,
    JobRequest,
    ModerateImageRequest,
    ModerateImageResult,
    ModerateTextRequest,
    ModerateTextResult,
    WriteManifestRequest,
    WriteManifestResult,
)
from orchestrations.generate_batch import bp

GOLDEN = Path(__file__).with_name("golden")
T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=timezone.utc)
JOB_ID = "golden-1"


def handles() -> dict[str, Callable[[str], str]]:
    """The SDK's handles of today's orchestrators, by registered name."""
    app = df.DFApp()
    app.register_functions(bp)
    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


@dataclass
class Scenario:
    """One job and how its activities answer."""

    name: str
    job: dict
    blocked_text: str | None = None  # moderate_text blocks this prompt
    failing_batch: str | None = None  # generate_images fails for this batch id, every try
    cancel: bool = False  # the user cancels once the batches are started; batches make one image
    max_batch: int = 16
    calls: list[str] = field(default_factory=list)

    def request(self) -> str:
        job = parse_job(self.job).model_dump(mode="json")
        return JobRequest(job=job, source="http", max_batch=self.max_batch).model_dump_json()

    def respond(self, name: str, payload: dict) -> tuple[bool, str]:
        """(ok, result JSON or failure reason) of one activity call."""
        if name == "moderate_text":
            texts = ModerateTextRequest.model_validate(payload).texts
            verdicts = [Verdict(status="blocked" if text == self.blocked_text else "safe", provider="local",
                                reasons=["blocklist: golden"] if text == self.blocked_text else [])
                        for text in texts]
            return True, ModerateTextResult(verdicts=verdicts).model_dump_json()
        if name == "moderate_image":
            check = ModerateImageRequest.model_validate(payload)
            return True, ModerateImageResult(verdict=Verdict(status="safe", provider="local"),
                                             image=check.image).model_dump_json()
        if name == "generate_images":
            batch = BatchRequest.model_validate(payload)
            if batch.batch.id == self.failing_batch:
                return False, "CUDA out of memory"
            variants = batch.batch.variants[:1] if self.cancel else batch.batch.variants
            # Each image comes back checked, stored where its verdict says (outputs/ when safe).
            images = [CheckedImage(image=HeldImage(variant_id=v.id, held=f"quarantine/{batch.job_id}/{v.id}.png",
                                                   publish_to=f"outputs/{batch.job_id}/{v.id}.png", sha256="0" * 64,
                                                   width=v.width, height=v.height, seconds=0.5, model="tiny",
                                                   device="cpu"),
                                   verdict=Verdict(status="safe", provider="local"),
                                   ref=f"outputs/{batch.job_id}/{v.id}.png")
                      for v in variants]
            return True, GenerateImagesResult(images=images).model_dump_json()
        if name == "write_manifest":
            request = WriteManifestRequest.model_validate(payload)
            statuses = {record.status for record in request.records}
            status = ("cancelled" if "cancelled by user" in request.reasons else "rejected" if statuses == {"blocked"}
                      else "completed" if statuses == {"ok"} else "partial")
            return True, WriteManifestResult(manifest=f"manifests/{request.job_id}.json", url="http://blob/m.json",
                                             status=status, totals={}).model_dump_json()
        raise AssertionError(f"no answer for activity {name}")


SCENARIOS = [
    Scenario("ok", {"name": "golden", "prompts": [{"text": "a red bicycle"}], "variants": {"seeds": 2, "sizes": ["64x64"], "steps": 2}}),
    Scenario("blocked_input", {"name": "golden", "prompts": [{"text": "a forbidden thing"}], "variants": {"seeds": 2, "sizes": ["64x64"], "steps": 2}},
             blocked_text="a forbidden thing"),
    Scenario("failed_batch", {"name": "golden", "prompts": [{"text": "a red bicycle"}],
                              "variants": {"seeds": 1, "sizes": ["64x64", "128x64"], "steps": 2}}, failing_batch="b001"),
    Scenario("cancel", {"name": "golden", "prompts": [{"text": "a red bicycle"}],
                        "variants": {"seeds": 2, "sizes": ["64x64", "128x64"], "steps": 2}}, cancel=True),
]


def _message(data: dict) -> Message:
    return Message(kind=data["kind"], event=data.get("event"), text=data.get("text"))


def _decisions(episode) -> dict:
    return {
        "calls": [["activity", a.name] for a in episode.activities]
        + [["sub_orchestration", s.name, s.instance_id] for s in episode.sub_orchestrations],
        "timers": len(episode.timers),
        "status": episode.status,
        "output": json.loads(episode.output) if episode.output else None,
        "custom_status": json.loads(episode.custom_status) if episode.custom_status else None,
    }


def record(scenario: Scenario) -> dict:
    """Run the job through the pure core, answering every call; the recording of each instance."""
    orchestrators = handles()
    instances: dict[str, dict] = {}

    def run(name: str, instance_id: str, input_json: str, start: datetime) -> str | None:
        state = OrchestrationState(instance_id, name)
        inbox = [Message("start", text=input_json)]
        episodes: list[dict] = []
        instances[instance_id] = {"name": name, "episodes": episodes}
        now = start
        cancel_sent = False
        while True:
            episode = run_episode(orchestrators[name], state, inbox, now)
            episodes.append({"at": h.format_time(now),
                             "messages": [{"kind": m.kind, "event": m.event, "text": m.text} for m in inbox],
                             **_decisions(episode)})
            if episode.status in TERMINAL_STATUSES:
                return episode.output
            now += timedelta(seconds=1)
            inbox = []
            for call in episode.activities:
                ok, result = scenario.respond(call.name, json.loads(call.input))
                inbox.append(Message("event", h.task_completed(call.task_id, result, now) if ok
                                     else h.task_failed(call.task_id, result, "", now)))
            if scenario.cancel and name == "generate_batch" and episode.sub_orchestrations and not cancel_sent:
                inbox.append(Message("event", h.event_raised("cancel", json.dumps({"by": "user"}), now)))
                cancel_sent = True
            for call in episode.sub_orchestrations:
                output = run(call.name, call.instance_id, call.input, now)
                inbox.append(Message("event", h.sub_orchestration_completed(call.task_id, output, now)))
            for timer in episode.timers:
                inbox.append(timer.message)
            if not inbox:
                raise AssertionError(f"{instance_id} waits for nothing the recording can give: {episodes[-1]}")

    run("generate_batch", JOB_ID, scenario.request(), T0)
    return {"scenario": scenario.name, "instances": instances}


def replay(recording: dict) -> list[str]:
    """Feed each instance's recorded messages to today's orchestrators; what differs."""
    orchestrators = handles()
    problems = []
    for instance_id, instance in recording["instances"].items():
        state = OrchestrationState(instance_id, instance["name"])
        for number, recorded in enumerate(instance["episodes"]):
            messages = [_message(m) for m in recorded["messages"]]
            now = h.parse_time(recorded["at"])
            now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
            decided = _decisions(run_episode(orchestrators[instance["name"]], state, messages, now))
            where = f"{instance_id} episode {number}"
            for key in ("calls", "timers", "status"):
                if decided[key] != recorded[key]:
                    problems.append(f"{where}: {key} was {recorded[key]!r}, now {decided[key]!r}")
            lost = _missing(recorded["output"], decided["output"])
            if lost:
                problems.append(f"{where}: the output no longer holds " + "; ".join(lost))
    return problems


def _missing(recorded, now) -> list[str]:
    """What of `recorded` is not in `now` (fields added since are fine)."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        return [f"{key}: {item}" for key, value in recorded.items()
                for item in (_missing(value, now[key]) if key in now else [repr(value)])]
    return [] if recorded == now else [f"{recorded!r} (now {now!r})"]


def path_of(scenario_name: str) -> Path:
    return GOLDEN / f"{scenario_name}.json"


if __name__ == "__main__":  # regenerate the golden files
    for scenario in SCENARIOS:
        path_of(scenario.name).write_text(json.dumps(record(scenario), indent=1, sort_keys=True) + "\n")
        print("wrote", path_of(scenario.name))
