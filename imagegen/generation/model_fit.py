"""A job against the model it names: the defaults it gets, and what that model cannot do.

Checked at submit (`triggers.jobs.start_job`), before anything runs, with the model's facts
(imagegen.generation.families), which are read from its config files without loading it:

- what the job leaves out (`variants.sizes`, `guidance`, `steps`, `scheduler`) comes from
  the model: its native square, its guidance and steps, its sampler (`ModelDefaults`);
- refused, every problem at once, each naming the field, the rule and the value: a negative
  prompt for a model without classifier-free guidance (FLUX.1), a sampler the model does
  not run (SD 3 and FLUX.1 run flow-matching Euler only), a tiny VAE the model has none of
  (any size is fine: the engine makes it on the model's grid and delivers it exactly,
  imagegen.generation.delivery);
- allowed with a warning in the manifest: DeepCache on a transformer model, which has no
  UNet to cache (its variants run without it); a negative prompt where guidance is 1 or
  less (the turbo models' default), where the pipeline skips guidance and the negative with it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from imagegen.core.field_errors import show_value
from imagegen.core.limits import Limits
from imagegen.core.types import AdapterUse, FieldError, JobValidationError
from imagegen.generation.families import ModelFacts
from imagegen.jobs.spec import JobSpec
from imagegen.jobs.variants import ModelDefaults


class ModelFit(BaseModel):
    """What a job gets from its model: its variants' defaults and the manifest's warnings."""

    defaults: ModelDefaults
    warnings: list[str] = Field(default_factory=list)
    # The job's LoRA adapters, checked for the model and hashed (imagegen.service.adapters).
    adapters: list[AdapterUse] = Field(default_factory=list)


def model_defaults(facts: ModelFacts, limits: Limits | None = None) -> ModelDefaults:
    """The model's defaults, held to the deployment's limits (`IMAGEGEN_MAX_STEPS`, `IMAGEGEN_MAX_SIDE`)."""
    defaults = facts.defaults
    steps, side = defaults.steps, defaults.side
    if limits is not None:
        steps = min(steps, limits.max_steps)
        side = min(side, limits.max_side - limits.max_side % facts.family.size_multiple)
    return ModelDefaults(steps=steps, guidance=defaults.guidance, size=f"{side}x{side}",
                         scheduler=defaults.scheduler, deepcache=facts.family.denoiser == "unet")


def fit_job(job: JobSpec, facts: ModelFacts, *, model: str, tiny_vae: bool,
            limits: Limits | None = None) -> ModelFit:
    """The defaults and warnings `job` gets on `facts`' model (named `model` in messages);
    JobValidationError listing every field the model cannot honour. `tiny_vae`: whether the
    model has a tiny VAE for `speedups.tiny_vae`."""
    family = facts.family
    title = f"{family.title} models"
    errors: list[FieldError] = []
    if not family.negatives:
        for index, prompt in enumerate(job.prompts):
            if prompt.negative:
                errors.append(FieldError(
                    path=f"prompts[{index}].negative", rule="negative_unsupported",
                    message=f"`prompts[{index}].negative` is not used by {title} (model `{model}`): they have no "
                            f"classifier-free guidance, so a negative prompt would be silently ignored; remove it, "
                            f"got {show_value(prompt.negative)}"))
    axes = job.variants
    samplers = ("euler",) if family.flow_matching else None
    if samplers is not None and axes.scheduler is not None and axes.scheduler not in samplers:
        errors.append(FieldError(
            path="variants.scheduler", rule="scheduler_unsupported",
            message=f"`variants.scheduler` must be {' or '.join(samplers)} for {title} (model `{model}`): they sample "
                    f"by flow matching with their own scheduler, got {show_value(axes.scheduler)}"))
    if job.speedups.tiny_vae and not tiny_vae:
        errors.append(FieldError(
            path="speedups.tiny_vae", rule="tiny_vae_unavailable",
            message=f"`speedups.tiny_vae` needs a tiny VAE ({family.tiny_vae}) for model `{model}` and this deployment "
                    "has none for it; remove it or ask the operator to set one"))
    if errors:
        raise JobValidationError(errors)
    warnings = []
    guidances = axes.guidance if axes.guidance is not None else [facts.defaults.guidance]
    if family.negatives and any(guidance <= 1 for guidance in guidances):
        # At guidance 1 or less the pipelines skip classifier-free guidance, negative and all
        # (the turbo models' default is 0).
        for index, prompt in enumerate(job.prompts):
            if prompt.negative:
                warnings.append(f"`prompts[{index}].negative` is unused where `variants.guidance` is 1 or less "
                                f"(model `{model}`: no classifier-free guidance there)")
    if job.speedups.deepcache > 1 and family.denoiser != "unet":
        warnings.append(f"`speedups.deepcache` {job.speedups.deepcache} is off: DeepCache reuses a UNet's deep "
                        f"features and {title} (model `{model}`) have a transformer")
    return ModelFit(defaults=model_defaults(facts, limits), warnings=warnings)
