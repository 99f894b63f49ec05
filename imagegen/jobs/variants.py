"""A job's variants and GPU batches: the fan-out, done once, in a stable order.

`expand` turns a checked `JobSpec` into explicit `Variant`s (seeds derived from the job's
content when it gives a count); `batches` groups them into the GPU calls the orchestration
hands out (`call_groups`: what one diffusers call can take); `split_batch` cuts one batch
into the calls a device's memory allows. Pure and
deterministic: the orchestrator calls them and must replay identically.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict

from imagegen.core.limits import INPUTS_CONTAINER, parse_size
from imagegen.core.types import AdapterUse, Batch, Scheduler, Variant
from imagegen.jobs.spec import DEFAULT_MASK_STRENGTH, DEFAULT_STRENGTH, JobSpec


class ModelDefaults(BaseModel):
    """What a job's variants get where the job says nothing, from the family of the model
    it runs on (decided at submit: imagegen.generation.model_fit), and whether DeepCache
    applies (a UNet model). The field defaults are Stable Diffusion 1.x's, what every job
    got before jobs named a model: a job recorded then replays with them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = 25
    guidance: float = 7.5
    size: str = "512x512"
    scheduler: Scheduler = "dpmpp"
    deepcache: bool = True  # False for a transformer model: its variants run without DeepCache


SD1_DEFAULTS = ModelDefaults()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def derive_seeds(job: JobSpec, count: int) -> list[int]:
    """`count` distinct seeds in 0..2**32-1 from the job's content.

    Everything but the seed count, the speed-ups, the delivery fit, review and notify goes in,
    so growing `seeds: 4` to `seeds: 8` keeps the first four images and adds four, and
    turning a speed-up on or fitting another way keeps the seeds (the images can be compared);
    any other change gives new seeds.
    """
    content = job.model_dump(mode="json")
    content["variants"].pop("seeds")
    # Seeds come from what the job says, whatever model it names and the defaults that
    # model brings: the same job on two models can be compared seed for seed, and a job
    # that leaves an axis out keeps the seeds it had when the defaults were written in.
    content.pop("model")
    for prompt in content["prompts"]:  # a job without masks keeps the seeds it had before masks
        if prompt.get("mask") is None:
            prompt.pop("mask", None)
    content.pop("adapters")  # likewise with and without a LoRA: the brand's look on the same seeds
    for axis, default in (("sizes", [SD1_DEFAULTS.size]), ("guidance", [SD1_DEFAULTS.guidance]),
                          ("steps", SD1_DEFAULTS.steps), ("scheduler", SD1_DEFAULTS.scheduler)):
        if content["variants"][axis] is None:
            content["variants"][axis] = default
    for how_not_what in ("speedups", "review", "notify"):  # review and notify change no pixel
        content.pop(how_not_what)
    for delivery in ("fit", "pad_color"):  # the same image made, cropped or padded another way
        content["output"].pop(delivery)
    base = hashlib.sha256(_canonical(content)).hexdigest()
    seeds: list[int] = []
    counter = 0
    while len(seeds) < count:
        digest = hashlib.sha256(f"{base}:seed:{counter}".encode()).digest()
        seed = int.from_bytes(digest[:4], "big")
        if seed not in seeds:  # a 32-bit collision is rare, but would repeat an image
            seeds.append(seed)
        counter += 1
    return seeds


def _short_number(value: float) -> str:
    return f"{value:g}".replace("+", "")


def expand(job: JobSpec, defaults: ModelDefaults = SD1_DEFAULTS,
           adapters: list[AdapterUse] | tuple[AdapterUse, ...] = ()) -> list[Variant]:
    """Every variant of the job, in the order prompt -> style -> size -> guidance -> seed
    (the seed changes fastest). Ids look like `v003-p0-s1-768x512-g7.5-seed1234`: the
    zero-padded position first so blob listings sort in job order. What the job leaves
    out comes from `defaults`, its model's; `adapters`: its LoRA adapters as checked at
    submit (with their sha256), the same for every variant."""
    if [(use.name, use.weight) for use in adapters] != [(spec.name, spec.weight) for spec in job.adapters]:
        raise ValueError("`adapters` must be the job's adapters, as checked at submit")
    axes = job.variants
    seeds = axes.seeds if isinstance(axes.seeds, list) else derive_seeds(job, axes.seeds)
    sizes = axes.sizes if axes.sizes is not None else [defaults.size]
    guidances = axes.guidance if axes.guidance is not None else [defaults.guidance]
    steps = axes.steps if axes.steps is not None else defaults.steps
    scheduler = axes.scheduler if axes.scheduler is not None else defaults.scheduler
    deepcache = job.speedups.deepcache if defaults.deepcache else 1
    variants: list[Variant] = []
    for prompt_index, prompt in enumerate(job.prompts):
        image = mask = strength = None
        if prompt.image is not None:
            # A bare name is in `inputs`; with a '/', it already names its container (the
            # intake resolves names to full blob names this way, e.g. `prompts/shoe.png`).
            image = prompt.image if "/" in prompt.image else f"{INPUTS_CONTAINER}/{prompt.image}"
            default_strength = DEFAULT_STRENGTH
            if prompt.mask is not None:
                mask = prompt.mask if "/" in prompt.mask else f"{INPUTS_CONTAINER}/{prompt.mask}"
                default_strength = DEFAULT_MASK_STRENGTH
            strength = prompt.strength if prompt.strength is not None else default_strength
        for style_index, style in enumerate(axes.styles):
            text = f"{prompt.text}, {style}" if style else prompt.text
            for size in sizes:
                width, height = parse_size(size)
                for guidance in guidances:
                    for seed in seeds:
                        index = len(variants)
                        variants.append(Variant(
                            id=f"v{index:03d}-p{prompt_index}-s{style_index}-{size}-g{_short_number(guidance)}-seed{seed}",
                            index=index, prompt_index=prompt_index, prompt=text, base_prompt=prompt.text,
                            style=style, negative=prompt.negative, seed=seed, width=width, height=height,
                            guidance=guidance, steps=steps, scheduler=scheduler,
                            image=image, mask=mask, strength=strength, format=job.output.format,
                            fit=job.output.fit, pad_color=job.output.pad_color,
                            deepcache=deepcache, tiny_vae=job.speedups.tiny_vae, model=job.model,
                            adapters=tuple(adapters),
                        ))
    return variants


def batches(variants: list[Variant], max_batch: int) -> list[Batch]:
    """Group variants into GPU calls of at most `max_batch` images.

    One diffusers call takes a list of prompts, negative prompts and generators (seeds),
    but a single model, size, step count, scheduler, guidance scale, source image/strength
    and speed-ups (`Variant.call_settings`), so those make the group key, with the format:
    a batch never mixes models.
    Groups keep the order of their first variant, variants keep their order inside a
    group, and batch ids run b000, b001, ... in that order.
    """
    if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
        raise ValueError(f"`max_batch` must be a whole number of at least 1, got {max_batch!r}")
    chunks = [group[start:start + max_batch] for group in call_groups(variants)
              for start in range(0, len(group), max_batch)]
    return [Batch(id=f"b{number:03d}", variants=chunk) for number, chunk in enumerate(chunks)]


def call_groups(variants: list[Variant]) -> list[list[Variant]]:
    """Variants grouped by what one diffusers call takes once for all its images
    (`Variant.call_settings`) and the output format, in the order of each group's first
    variant. The orchestration's `batches` and the engine's calls both group this way."""
    groups: dict[tuple, list[Variant]] = {}
    for variant in variants:
        groups.setdefault((variant.call_settings(), variant.format), []).append(variant)
    return list(groups.values())


def split_batch(batch: Batch, size: int) -> Iterator[Batch]:
    """One batch cut into GPU calls of at most `size` images, in order (same batch id)."""
    size = max(1, size)
    for start in range(0, len(batch.variants), size):
        yield batch.model_copy(update={"variants": batch.variants[start:start + size]})
