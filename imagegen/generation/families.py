"""Model families: what each kind of diffusers model needs, and which one a model folder is.

A family is detected from the model's own files: `model_index.json` names the pipeline
class (`_class_name`), and the component configs tell the members of a family apart (SD 2
from SD 1 by its text encoder, FLUX.1 dev from schnell by its guidance embedding, SD 3.5
Large from Medium by its transformer). What a family needs, as data (`Family`): its
text-to-image and image-to-image pipeline classes, the defaults a job that says nothing gets
(`Defaults`), its text encoders and the tokens each reads (`TextEncoder`), whether it takes
negative prompts, the samplers it runs, and its tiny VAE. docs/models.md cites where each
number comes from.

No torch here: the HTTP process reads a model's family to fill a job's defaults and refuse
what the model cannot do, without loading gigabytes of weights. Pipeline classes are named,
and `imagegen.generation.engine` looks them up in diffusers.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from imagegen.core.types import Scheduler

FamilyName = Literal["sd1", "sd2", "sdxl", "sd3", "flux"]
Denoiser = Literal["unet", "transformer"]
# imagegen.generation.tiny_model's id and revision, here so that code without torch knows them.
TINY_MODEL_ID = "tiny"
TINY_REVISION = "tiny-v1"
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")  # owner/name

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TextEncoder(BaseModel):
    """One text encoder: where its tokenizer is, what kind it is, and how many tokens it reads."""

    model_config = _FROZEN

    tokenizer: str  # the pipeline's tokenizer attribute and folder: tokenizer, tokenizer_2, tokenizer_3
    kind: Literal["CLIP", "T5"]
    max_tokens: int  # start and end tokens included


class Defaults(BaseModel):
    """What a job's variants get where the job says nothing."""

    model_config = _FROZEN

    steps: int
    guidance: float
    side: int  # the native square: `side`x`side` pixels, the pixel budget the model was trained at
    scheduler: Scheduler


class Family(BaseModel):
    """What one family of models needs: one instance per family in FAMILIES."""

    model_config = _FROZEN

    name: FamilyName
    title: str
    text2image: str  # diffusers pipeline class names
    image2image: str
    inpaint: str  # made `from_pipe` like image2image: a prompt with `mask` (imagegen.generation.engine)
    denoiser: Denoiser  # DeepCache caches a UNet's deep blocks: it fits `unet` only
    flow_matching: bool  # SD 3 and FLUX sample with their own flow-matching Euler scheduler
    negatives: bool  # whether it takes a negative prompt (classifier-free guidance)
    size_multiple: int  # sides must be a multiple of this (VAE factor 8 x transformer patch 2 = 16)
    text_encoders: tuple[TextEncoder, ...]
    defaults: Defaults
    tiny_vae: str  # the tiny VAE that decodes its latents (madebyollin's TAESD family)
    latent_channels: int


CLIP = TextEncoder(tokenizer="tokenizer", kind="CLIP", max_tokens=77)
CLIP_2 = TextEncoder(tokenizer="tokenizer_2", kind="CLIP", max_tokens=77)
# SD 3 reads 256 T5 tokens: diffusers' default `max_sequence_length`, and the longest T5
# context SD 3.5 was trained with ("77/256 tokens at different stages of training").
T5_SD3 = TextEncoder(tokenizer="tokenizer_3", kind="T5", max_tokens=256)
# FLUX.1 dev reads 512 T5 tokens; schnell at most 256 (the flavour below).
T5_FLUX = TextEncoder(tokenizer="tokenizer_2", kind="T5", max_tokens=512)

UNET_SAMPLERS: tuple[Scheduler, ...] = ("dpmpp", "euler", "euler_a", "ddim", "lcm")
FLOW_SAMPLERS: tuple[Scheduler, ...] = ("euler",)

FAMILIES: dict[FamilyName, Family] = {
    "sd1": Family(
        name="sd1", title="Stable Diffusion 1.x", text2image="StableDiffusionPipeline",
        image2image="StableDiffusionImg2ImgPipeline",
        inpaint="StableDiffusionInpaintPipeline", denoiser="unet", flow_matching=False, negatives=True,
        size_multiple=8, text_encoders=(CLIP,), tiny_vae="taesd", latent_channels=4,
        defaults=Defaults(steps=25, guidance=7.5, side=512, scheduler="dpmpp"),
    ),
    "sd2": Family(
        name="sd2", title="Stable Diffusion 2.x", text2image="StableDiffusionPipeline",
        image2image="StableDiffusionImg2ImgPipeline",
        inpaint="StableDiffusionInpaintPipeline", denoiser="unet", flow_matching=False, negatives=True,
        size_multiple=8, text_encoders=(CLIP,), tiny_vae="taesd", latent_channels=4,
        defaults=Defaults(steps=25, guidance=7.5, side=768, scheduler="dpmpp"),
    ),
    "sdxl": Family(
        name="sdxl", title="Stable Diffusion XL", text2image="StableDiffusionXLPipeline",
        image2image="StableDiffusionXLImg2ImgPipeline",
        inpaint="StableDiffusionXLInpaintPipeline", denoiser="unet", flow_matching=False, negatives=True,
        size_multiple=8, text_encoders=(CLIP, CLIP_2), tiny_vae="taesdxl", latent_channels=4,
        # Euler, SDXL's own scheduler: DPM-Solver++ under 50 steps leaves artifacts on SDXL.
        defaults=Defaults(steps=30, guidance=5.0, side=1024, scheduler="euler"),
    ),
    "sd3": Family(
        name="sd3", title="Stable Diffusion 3 / 3.5", text2image="StableDiffusion3Pipeline",
        image2image="StableDiffusion3Img2ImgPipeline",
        inpaint="StableDiffusion3InpaintPipeline", denoiser="transformer", flow_matching=True, negatives=True,
        size_multiple=16, text_encoders=(CLIP, CLIP_2, T5_SD3), tiny_vae="taesd3", latent_channels=16,
        defaults=Defaults(steps=28, guidance=7.0, side=1024, scheduler="euler"),
    ),
    "flux": Family(
        name="flux", title="FLUX.1", text2image="FluxPipeline", image2image="FluxImg2ImgPipeline",
        inpaint="FluxInpaintPipeline",
        denoiser="transformer", flow_matching=True,
        # Guidance-distilled: no classifier-free guidance, so no negative prompt (docs/models.md).
        negatives=False,
        size_multiple=16, text_encoders=(CLIP, T5_FLUX), tiny_vae="taef1", latent_channels=16,
        defaults=Defaults(steps=28, guidance=3.5, side=1024, scheduler="euler"),
    ),
}

# model_index.json `_class_name` -> family. A folder saved from an img2img pipeline is the
# same model: its family's pipelines load it.
PIPELINE_FAMILIES: dict[str, FamilyName] = {
    "StableDiffusionPipeline": "sd1", "StableDiffusionImg2ImgPipeline": "sd1",
    "StableDiffusionXLPipeline": "sdxl", "StableDiffusionXLImg2ImgPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3", "StableDiffusion3Img2ImgPipeline": "sd3",
    "FluxPipeline": "flux", "FluxImg2ImgPipeline": "flux",
}


class ModelFacts(BaseModel):
    """One model's family and flavour, the defaults and text encoders it gets, and the
    sha256 of its config (None where there are no config files: the built-in tiny model)."""

    model_config = _FROZEN

    family: Family
    flavour: str  # e.g. "large-turbo", "schnell"; "base" when the family has one kind
    defaults: Defaults
    text_encoders: tuple[TextEncoder, ...]
    config_sha256: str | None = None
    # The width of the text features a UNet's cross-attention reads (768 SD 1.x, 1024 SD 2.x,
    # 2048 SDXL); None for transformers or where the config does not say. LoRA adapters are
    # checked against it (imagegen.generation.adapters).
    context_dim: int | None = None
    # The UNet's channels per down block (`block_out_channels`): its attention layers' width
    # there; None for transformers. LoRA shapes are checked against them too.
    block_channels: tuple[int, ...] | None = None

    @property
    def name(self) -> FamilyName:
        return self.family.name


class UnknownFamily(ValueError):
    """A model whose family cannot be known: not a folder or hub id, no `model_index.json`,
    or a pipeline class none of the families has."""


# --- detection ---------------------------------------------------------------------------


def facts_from_configs(configs: dict[str, dict[str, Any]], source: str = "") -> ModelFacts:
    """The facts of a model from its configs: `model_index.json` and the components' configs,
    by their paths in the model folder (`transformer/config.json`, ...). `source` (the folder
    or hub id) tells the turbo models apart: their configs are those of their base models."""
    index = configs.get("model_index.json")
    if not isinstance(index, dict) or "_class_name" not in index:
        raise UnknownFamily(f"model {source!r} has no `model_index.json` with a `_class_name`: "
                            "it is not a diffusers pipeline folder")
    class_name = index["_class_name"]
    if class_name not in PIPELINE_FAMILIES:
        raise UnknownFamily(f"model {source!r} is a `{class_name}`; the families served are "
                            f"{', '.join(sorted(PIPELINE_FAMILIES))}")
    family = FAMILIES[PIPELINE_FAMILIES[class_name]]
    if family.name == "sd1" and _is_sd2(configs):
        family = FAMILIES["sd2"]
    flavour, defaults, encoders = _flavour(family, configs, source.lower())
    unet = configs.get("unet/config.json", {})
    context_dim, channels = unet.get("cross_attention_dim"), unet.get("block_out_channels")
    return ModelFacts(family=family, flavour=flavour, defaults=defaults, text_encoders=encoders,
                      config_sha256=config_digest(configs),
                      context_dim=context_dim if isinstance(context_dim, int) else None,
                      block_channels=tuple(channels) if isinstance(channels, list)
                      and all(isinstance(c, int) for c in channels) else None)


def _is_sd2(configs: dict[str, dict[str, Any]]) -> bool:
    # SD 2 reads prompts with OpenCLIP ViT-H (1024 wide); SD 1 with CLIP ViT-L (768).
    unet = configs.get("unet/config.json", {})
    return unet.get("cross_attention_dim") == 1024


def _flavour(family: Family, configs: dict[str, dict[str, Any]],
             source: str) -> tuple[str, Defaults, tuple[TextEncoder, ...]]:
    """The member of the family: its defaults and text encoders (docs/models.md cites each)."""
    defaults, encoders = family.defaults, family.text_encoders
    scheduler = configs.get("scheduler/scheduler_config.json", {})
    transformer = configs.get("transformer/config.json", {})
    if family.name == "sd2":
        if "turbo" in source:  # stabilityai/sd-turbo: one step, no guidance, 512 px
            return "turbo", defaults.model_copy(update={"steps": 1, "guidance": 0.0, "side": 512}), encoders
        if scheduler.get("prediction_type") != "v_prediction":  # the 512 px "base" models predict noise
            return "base-512", defaults.model_copy(update={"side": 512}), encoders
        return "768-v", defaults, encoders
    if family.name == "sdxl" and "turbo" in source:  # stabilityai/sdxl-turbo
        return "turbo", defaults.model_copy(update={"steps": 1, "guidance": 0.0, "side": 512}), encoders
    if family.name == "sd3":
        if "turbo" in source:  # SD 3.5 Large Turbo: Large's transformer, distilled to 4 steps
            return "3.5-large-turbo", defaults.model_copy(update={"steps": 4, "guidance": 0.0}), encoders
        if transformer.get("num_layers", 0) >= 38:
            return "3.5-large", defaults.model_copy(update={"steps": 28, "guidance": 3.5}), encoders
        if transformer.get("dual_attention_layers"):
            return "3.5-medium", defaults.model_copy(update={"steps": 40, "guidance": 4.5}), encoders
        return "3-medium", defaults, encoders
    if family.name == "flux":
        if transformer.get("guidance_embeds", True):
            return "dev", defaults, encoders
        # schnell: timestep-distilled, 4 steps, no guidance, at most 256 T5 tokens.
        schnell_t5 = tuple(e.model_copy(update={"max_tokens": 256}) if e.kind == "T5" else e for e in encoders)
        return "schnell", defaults.model_copy(update={"steps": 4, "guidance": 0.0}), schnell_t5
    return "base", defaults, encoders


def tiny_model_facts() -> ModelFacts:
    """The built-in offline test model (`tiny`, imagegen.generation.tiny_model): an SD 1.x."""
    family = FAMILIES["sd1"]
    return ModelFacts(family=family, flavour="tiny", defaults=family.defaults, text_encoders=family.text_encoders,
                      context_dim=32, block_channels=(32, 64))  # tiny_model's UNet


def config_digest(configs: dict[str, Any]) -> str:
    """sha256 of the configs as canonical JSON (sorted keys, no spaces), whatever their
    formatting in the files: the same model reads the same anywhere."""
    text = json.dumps(configs, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- reading a model's configs -------------------------------------------------------------


def config_file(class_name: str) -> str:
    """The config file a component of this class keeps in its folder."""
    if class_name.endswith("Scheduler"):
        return "scheduler_config.json"
    if "Tokenizer" in class_name:
        return "tokenizer_config.json"
    if class_name.endswith(("ImageProcessor", "FeatureExtractor")):
        return "preprocessor_config.json"
    return "config.json"


def read_configs(source: str, revision: str | None = None) -> dict[str, dict[str, Any]]:
    """`model_index.json` and each component's config, by path, from a model folder or a hub
    id (the hub's cache, where the weights are; only the small JSON files are fetched)."""
    if Path(source).is_dir():
        read = _folder_reader(Path(source))
    elif HUB_ID.fullmatch(source):
        read = _hub_reader(source, revision)
    else:
        raise UnknownFamily(f"model {source!r} is neither a model folder (there is none) nor a hub id `owner/name`")
    index = read("model_index.json")
    if index is None:
        raise UnknownFamily(f"model {source!r} has no `model_index.json`: it is not a diffusers pipeline folder")
    configs = {"model_index.json": index}
    for component, spec in sorted(index.items()):
        if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
            continue
        path = f"{component}/{config_file(str(spec[1]))}"
        config = read(path)
        if config is not None:
            configs[path] = config
    return configs


def _folder_reader(folder: Path):
    def read(path: str) -> dict[str, Any] | None:
        file = folder / path
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None

    return read


def _hub_reader(repo_id: str, revision: str | None):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def read(path: str) -> dict[str, Any] | None:
        try:
            file = hf_hub_download(repo_id, path, revision=revision)
        except EntryNotFoundError:
            return None
        except Exception as error:  # offline without the file cached, no such repo, no access
            raise UnknownFamily(f"model {repo_id!r}: {path} could not be read from the hub or its cache "
                                f"({type(error).__name__}: {error})") from None
        return json.loads(Path(file).read_text(encoding="utf-8"))

    return read


def read_model_facts(source: str, revision: str | None = None) -> ModelFacts:
    """The facts of the model `source` (a folder, a hub id, or `tiny`)."""
    if source == TINY_MODEL_ID:
        return tiny_model_facts()
    return facts_from_configs(read_configs(source, revision), source)
