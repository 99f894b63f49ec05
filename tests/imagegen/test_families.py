"""Model families, detected from a model's files; the pure decisions of precision and placement.

Folders are the tiny random pipelines of tests/imagegen/tiny_families.py, saved with
`save_pretrained`; the members of a family that only real configs tell apart (SD 3.5
Large, SD 2 768-v, ...) are read from configs written here.
"""

from __future__ import annotations

import json

import pytest

from imagegen.generation.families import (
    FAMILIES,
    UnknownFamily,
    config_digest,
    facts_from_configs,
    read_configs,
    read_model_facts,
)
from imagegen.generation.placement import WORKING_BYTES, pick_placement, pick_precision
from tests.imagegen.tiny_families import save_family

GiB = 2**30


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {name: save_family(name, root / name) for name in ("sd1", "sdxl", "sd3", "flux", "flux-schnell")}


@pytest.mark.parametrize("name, family, flavour, steps, guidance, side, scheduler, tokens", [
    ("sd1", "sd1", "base", 25, 7.5, 512, "dpmpp", [("CLIP", 77)]),
    ("sdxl", "sdxl", "base", 30, 5.0, 1024, "euler", [("CLIP", 77), ("CLIP", 77)]),
    ("sd3", "sd3", "3-medium", 28, 7.0, 1024, "euler", [("CLIP", 77), ("CLIP", 77), ("T5", 256)]),
    ("flux", "flux", "dev", 28, 3.5, 1024, "euler", [("CLIP", 77), ("T5", 512)]),
    ("flux-schnell", "flux", "schnell", 4, 0.0, 1024, "euler", [("CLIP", 77), ("T5", 256)]),
])
def test_a_model_folder_says_its_family_and_defaults(folders, name, family, flavour, steps, guidance, side,
                                                     scheduler, tokens):
    facts = read_model_facts(str(folders[name]))
    assert (facts.name, facts.flavour) == (family, flavour)
    assert (facts.defaults.steps, facts.defaults.guidance, facts.defaults.side, facts.defaults.scheduler) == (
        steps, guidance, side, scheduler)
    assert [(encoder.kind, encoder.max_tokens) for encoder in facts.text_encoders] == tokens
    assert facts.config_sha256 is not None and len(facts.config_sha256) == 64


def test_each_family_names_its_pipelines_denoiser_and_tiny_vae():
    table = {name: (f.text2image, f.image2image, f.denoiser, f.negatives, f.tiny_vae) for name, f in FAMILIES.items()}
    assert table == {
        "sd1": ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "unet", True, "taesd"),
        "sd2": ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "unet", True, "taesd"),
        "sdxl": ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "unet", True, "taesdxl"),
        "sd3": ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "transformer", True, "taesd3"),
        "flux": ("FluxPipeline", "FluxImg2ImgPipeline", "transformer", False, "taef1"),
    }


def configs(class_name: str, **components) -> dict:
    return {"model_index.json": {"_class_name": class_name}, **components}


@pytest.mark.parametrize("source, files, family, flavour, steps, guidance, side", [
    ("stabilityai/stable-diffusion-2-1", configs("StableDiffusionPipeline", **{
        "unet/config.json": {"cross_attention_dim": 1024},
        "scheduler/scheduler_config.json": {"prediction_type": "v_prediction"}}), "sd2", "768-v", 25, 7.5, 768),
    ("stabilityai/stable-diffusion-2-base", configs("StableDiffusionPipeline", **{
        "unet/config.json": {"cross_attention_dim": 1024},
        "scheduler/scheduler_config.json": {"prediction_type": "epsilon"}}), "sd2", "base-512", 25, 7.5, 512),
    ("stabilityai/sd-turbo", configs("StableDiffusionPipeline", **{
        "unet/config.json": {"cross_attention_dim": 1024}}), "sd2", "turbo", 1, 0.0, 512),
    ("stabilityai/sdxl-turbo", configs("StableDiffusionXLPipeline"), "sdxl", "turbo", 1, 0.0, 512),
    ("stabilityai/stable-diffusion-3.5-large", configs("StableDiffusion3Pipeline", **{
        "transformer/config.json": {"num_layers": 38}}), "sd3", "3.5-large", 28, 3.5, 1024),
    ("stabilityai/stable-diffusion-3.5-large-turbo", configs("StableDiffusion3Pipeline", **{
        "transformer/config.json": {"num_layers": 38}}), "sd3", "3.5-large-turbo", 4, 0.0, 1024),
    ("stabilityai/stable-diffusion-3.5-medium", configs("StableDiffusion3Pipeline", **{
        "transformer/config.json": {"num_layers": 24, "dual_attention_layers": list(range(13))}}),
     "sd3", "3.5-medium", 40, 4.5, 1024),
    ("black-forest-labs/FLUX.1-dev", configs("FluxPipeline", **{
        "transformer/config.json": {"guidance_embeds": True}}), "flux", "dev", 28, 3.5, 1024),
])
def test_the_members_of_a_family_are_told_apart_by_their_configs(source, files, family, flavour, steps, guidance, side):
    facts = facts_from_configs(files, source)
    assert (facts.name, facts.flavour) == (family, flavour)
    assert (facts.defaults.steps, facts.defaults.guidance, facts.defaults.side) == (steps, guidance, side)


def test_a_folder_that_is_no_served_pipeline_is_refused_by_name(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(UnknownFamily, match=r"is a `KandinskyPipeline`; the families served are FluxImg2ImgPipeline, "):
        read_model_facts(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownFamily, match=r"has no `model_index.json`"):
        read_model_facts(str(tmp_path / "empty"))
    with pytest.raises(UnknownFamily, match=r"is neither a model folder \(there is none\) nor a hub id `owner/name`"):
        read_model_facts(str(tmp_path / "nothing-here"))


def test_the_config_hash_covers_every_component_config_and_ignores_formatting(folders, tmp_path):
    files = read_configs(str(folders["flux"]))
    assert set(files) == {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                          "text_encoder_2/config.json", "tokenizer/tokenizer_config.json",
                          "tokenizer_2/tokenizer_config.json", "transformer/config.json", "vae/config.json"}
    assert config_digest(files) == read_model_facts(str(folders["flux"])).config_sha256
    # The same configs written otherwise hash the same; a changed value does not.
    reordered = {path: dict(reversed(list(config.items()))) for path, config in reversed(list(files.items()))}
    assert config_digest(reordered) == config_digest(files)
    changed = {**files, "transformer/config.json": {**files["transformer/config.json"], "num_layers": 2}}
    assert config_digest(changed) != config_digest(files)


# --- precision and placement: the CUDA decisions, as numbers ---------------------------


@pytest.mark.parametrize("device, native_bf16, precision", [
    ("cuda", True, "bfloat16"),  # A100, H100, L4
    ("cuda", False, "float16"),  # T4, V100: bf16 only by emulation
    ("mps", False, "float16"),
    ("cpu", False, "float32"),
])
def test_precision_is_bf16_only_where_the_gpu_has_it_natively(device, native_bf16, precision):
    assert pick_precision(device, native_bf16) == precision


# SD 3.5 Large in bf16, by component (GiB, from the checkpoint's file sizes at 2 bytes a weight).
SD35_LARGE = {"transformer": int(16.3 * GiB), "text_encoder_3": int(9.5 * GiB), "text_encoder_2": int(1.3 * GiB),
              "text_encoder": int(0.23 * GiB), "vae": int(0.16 * GiB)}
SDXL = {"unet": int(4.8 * GiB), "text_encoder_2": int(1.3 * GiB), "text_encoder": int(0.23 * GiB), "vae": int(0.16 * GiB)}


@pytest.mark.parametrize("gpu, free_gib, components, placement", [
    ("H100 80 GB", 78, SD35_LARGE, "gpu"),
    ("L4 24 GB", 22, SD35_LARGE, "model_offload"),  # the transformer fits alone, not with T5
    ("T4 16 GB", 14.5, SD35_LARGE, "sequential_offload"),  # not even the transformer fits
    ("T4 16 GB", 14.5, SDXL, "gpu"),
])
def test_offload_is_chosen_by_free_gpu_memory(gpu, free_gib, components, placement):
    assert pick_placement(int(free_gib * GiB), components) == placement, gpu


def test_placement_leaves_working_room_beside_the_weights():
    weights = {"unet": 10 * GiB}
    assert pick_placement(10 * GiB + WORKING_BYTES, weights) == "gpu"
    assert pick_placement(10 * GiB + WORKING_BYTES - 1, weights) == "sequential_offload"
    assert pick_placement(10 * GiB + WORKING_BYTES - 1, {"unet": 6 * GiB, "text_encoder": 4 * GiB}) == "model_offload"
