"""Golden histories of `generate_batch`: record them once, replay them against today's code.

A recording is what devhost's pure core (`devhost.durable.core.run_episode`) saw and did
for every instance of one job — the orchestration and each `render_batch` — episode by
episode: the messages delivered (activity results, sub-orchestration results, timer
fires, the cancel and review events) and what the orchestrator decided (each call it
scheduled with its input, its timers, status, output and custom status). Activities are
not run: the job is played by `driver.play`, and `scripted` answers each call with the
result the real activity would give, in today's message shapes.

Replaying feeds the recorded messages to today's orchestrators and checks they decide
the same: the same calls with the same inputs in the same order, the same timers and
status, and an output that still holds everything recorded. A change that fails here
would break the replay of instances in flight in Azure when it is deployed, or sends the
activities something else. If the change is meant to (a new shape), say so in the change
and regenerate: `.venv/bin/python -m tests.orchestrations.golden`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

from devhost.durable import history as h
from devhost.durable.core import Message, OrchestrationState, run_episode
from imagegen.jobs.spec import parse_job
from imagegen.jobs.variants import expand
from tests.orchestrations import scripted
from tests.orchestrations.driver import REVIEW_PASS, T0, Activity, Raise, decisions, handles, phase_is, play, request_of, started

GOLDEN = Path(__file__).with_name("golden")
JOB_ID = "golden-1"
SMALL = {"seeds": 2, "sizes": ["64x64"], "steps": 2}


@dataclass
class Scenario:
    """One job, how its activities answer and what people do while it runs."""

    name: str
    job: dict
    activities: dict[str, Activity] = field(default_factory=dict)  # overrides of scripted.activities()
    events: list[Raise] = field(default_factory=list)

    def request(self) -> str:
        return request_of(self.job)


def variant_ids(job: dict) -> list[str]:
    return [variant.id for variant in expand(parse_job(job))]


def decision(**fields) -> dict:
    """A `review` event's payload as the route raises it: reviewer and time filled in."""
    return {"approve": [], "reject": [], "note": "", "finish": False, "reviewer": "ana",
            "at": (T0 + timedelta(minutes=5)).isoformat(), **fields}


REVIEWED = {"name": "golden", "prompts": [{"text": "a red bicycle"}], "variants": SMALL, "review": {"timeout": "1h"}}
TIMED_OUT = {**REVIEWED, "review": {"timeout": "1h", "on_timeout": "approve"},
             "notify": {"url": "https://hooks.example.com/golden/secret"}}
V0, V1 = variant_ids(REVIEWED)

SCENARIOS = [
    Scenario("ok", {"name": "golden", "prompts": [{"text": "a red bicycle"}], "variants": SMALL}),
    Scenario("blocked_input", {"name": "golden", "prompts": [{"text": "a forbidden thing"}], "variants": SMALL},
             activities={"moderate_text": scripted.moderate_text(blocked=["a forbidden thing"])}),
    Scenario("failed_batch", {"name": "golden", "prompts": [{"text": "a red bicycle"}],
                              "variants": {"seeds": 1, "sizes": ["64x64", "128x64"], "steps": 2}},
             activities={"generate_images": scripted.generate_images(failing=["b001"])}),
    # The user cancels once the batches are started; each batch makes one image before it stops.
    Scenario("cancel", {"name": "golden", "prompts": [{"text": "a red bicycle"}],
                        "variants": {"seeds": 2, "sizes": ["64x64", "128x64"], "steps": 2}},
             activities={"generate_images": scripted.generate_images(made=1)},
             events=[Raise("cancel", {"by": "user"}, started("render_batch"))]),
    # Two passes: one image approved (and published), then the other rejected: all decided.
    Scenario("review_approve", REVIEWED, events=[
        Raise(REVIEW_PASS, decision(approve=[V0], note="good"), phase_is("awaiting review")),
        Raise(REVIEW_PASS, decision(reject=[V1], note="wrong colour"), phase_is("awaiting review"))]),
    # Nobody decides: at the timeout every image is approved (on_timeout) and published; the
    # webhook is told when the review starts and when the job ends.
    Scenario("review_timeout", TIMED_OUT),
    Scenario("notify", {"name": "golden", "prompts": [{"text": "a red bicycle"}], "variants": SMALL,
                        "notify": {"url": "https://hooks.example.com/golden/secret"}}),
    Scenario("img2img", {"name": "golden", "prompts": [{"text": "a red bicycle, watercolour", "image": "bike.png",
                                                        "strength": 0.6}], "variants": SMALL}),
]


def record(scenario: Scenario) -> dict:
    """Run the job through the pure core, answering every call; the recording of each instance."""
    run = play(scenario.request(), scripted.activities(**scenario.activities), scenario.events, job_id=JOB_ID)
    return {"scenario": scenario.name, "instances": run.recording}


def _message(data: dict) -> Message:
    return Message(kind=data["kind"], event=data.get("event"), text=data.get("text"))


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
            decided = decisions(run_episode(orchestrators[instance["name"]], state, messages, now))
            where = f"{instance_id} episode {number}"
            problems += [f"{where}: {problem}" for problem in _call_problems(recorded["calls"], decided["calls"])]
            for key in ("timers", "status"):
                if decided[key] != recorded[key]:
                    problems.append(f"{where}: {key} was {recorded[key]!r}, now {decided[key]!r}")
            lost = _missing(recorded["output"], decided["output"])
            if lost:
                problems.append(f"{where}: the output no longer holds " + "; ".join(lost))
    return problems


def _call_problems(recorded: list[list], now: list[list]) -> list[str]:
    """Each call (kind, name, [instance id,] input) made differently: another call, another
    input (compared exactly: a new field in a request is a change to say so and regenerate)."""
    problems = []
    for number in range(max(len(recorded), len(now))):
        was = recorded[number] if number < len(recorded) else None
        made = now[number] if number < len(now) else None
        if made is None or was is None or was[:-1] != made[:-1]:
            problems.append(f"call {number} was {_head(was)}, now {_head(made)}")
        elif was[-1] != made[-1]:
            problems.append(f"call {number} ({' '.join(was[:-1])}): input differs at "
                            + "; ".join(_differences(was[-1], made[-1])))
    return problems


def _head(call: list | None) -> str:
    return " ".join(call[:-1]) if call else "nothing"


def _differences(recorded, now, path: str = "") -> list[str]:
    """Where two JSON values differ, by path: `records[0].status: 'ok' (now 'failed')`."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        return [item for key in [*recorded, *(k for k in now if k not in recorded)]
                for item in _differences(recorded.get(key, "<absent>"), now.get(key, "<absent>"),
                                         f"{path}.{key}" if path else key)]
    if isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        return [item for index, (a, b) in enumerate(zip(recorded, now)) for item in _differences(a, b, f"{path}[{index}]")]
    return [] if recorded == now else [f"{path or 'the input'}: {recorded!r} (now {now!r})"]


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
