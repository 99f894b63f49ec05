"""Schedulers by the names a job uses: dpmpp, euler, euler_a, ddim, lcm.

Each is built `from_config` of the model's own scheduler config, so it keeps the
model's noise schedule and prediction type (epsilon for SD 1.5, v-prediction for SD 2.x
768). A scheduler is stateful (its timesteps, DPM-Solver's history), so every
generation gets a fresh one rather than sharing one between threads.

Flow-matching models (SD 3, FLUX.1) sample with their own `FlowMatchEulerDiscreteScheduler`
(with FLUX's resolution-dependent shift): `euler` is that one, and the others do not apply
(a job naming one for such a model is refused at submit, imagegen.generation.model_fit).
"""

from __future__ import annotations

from typing import Any, get_args

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    LCMScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from imagegen.core.types import Scheduler

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "dpmpp": DPMSolverMultistepScheduler,  # DPM-Solver++ 2M, A1111's "DPM++ 2M"
    "euler": EulerDiscreteScheduler,
    "euler_a": EulerAncestralDiscreteScheduler,
    "ddim": DDIMScheduler,
    "lcm": LCMScheduler,  # only useful with an LCM-distilled model or LoRA, at 4-8 steps
}

# The samplers of a flow-matching model, by the same names.
FLOW_MATCHING_SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "euler": FlowMatchEulerDiscreteScheduler,
}

# The job spec's Literal and this table must name the same schedulers.
if set(SCHEDULERS) != set(get_args(Scheduler)):
    raise RuntimeError(f"imagegen.schedulers.SCHEDULERS {sorted(SCHEDULERS)} != types.Scheduler")


def make_scheduler(name: str, config: Any, *, flow_matching: bool = False) -> SchedulerMixin:
    """A new scheduler `name` with the model's schedule (`config`: a scheduler's .config);
    `flow_matching` for SD 3 and FLUX.1 models (imagegen.generation.families)."""
    if flow_matching:
        if name not in FLOW_MATCHING_SCHEDULERS:
            raise ValueError(f"`scheduler` of a flow-matching model (SD 3, FLUX.1) must be one of "
                             f"{', '.join(FLOW_MATCHING_SCHEDULERS)}, got {name!r}")
        return FLOW_MATCHING_SCHEDULERS[name].from_config(config)
    if name not in SCHEDULERS:
        raise ValueError(f"`scheduler` must be one of {', '.join(SCHEDULERS)}, got {name!r}")
    options: dict[str, Any] = {}
    if name == "dpmpp":
        # The "2M" multistep solver in DPM-Solver++ form, whatever the model shipped with.
        options = {"algorithm_type": "dpmsolver++", "solver_order": 2}
    return SCHEDULERS[name].from_config(config, **options)
