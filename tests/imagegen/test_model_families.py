"""The engine on a tiny random model of every family, from a saved folder, on CPU: 64 px, 2 steps.

SD 1.x is the tiny model of test_diffusion.py; here SDXL, SD 3 and FLUX.1 (dev and schnell)
run txt2img and img2img through their own pipeline classes, warn about prompts each of
their text encoders cuts, and refuse what their family cannot do.
"""

from __future__ import annotations

import PIL.Image
import pytest

from imagegen.core.settings import Settings
from imagegen.generation.engine import DiffusionEngine
from tests.imagegen.test_diffusion import TOLERANCE, batch, max_difference, variant
from tests.imagegen.tiny_families import save_family, tiny_autoencoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PIPELINES = {
    "sdxl": ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline"),
    "sd3": ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline"),
    "flux": ("FluxPipeline", "FluxImg2ImgPipeline"),
    "flux-schnell": ("FluxPipeline", "FluxImg2ImgPipeline"),
}


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, DiffusionEngine]:
    root = tmp_path_factory.mktemp("models")
    engines = {}
    for name in PIPELINES:
        folder = save_family(name, root / name, tiny_vae=True)
        engines[name] = DiffusionEngine(str(folder), settings=Settings(device="cpu"), tiny_vae=f"{folder}-taesd")
    return engines


def family_variant(name: str, index: int = 0, seed: int = 1, **changes):
    """A variant that fits the family: no negative for FLUX, its one sampler for SD 3 and FLUX."""
    values = dict(steps=2, scheduler="euler", guidance=3.5)
    if name.startswith("flux"):
        values["negative"] = ""
    values.update(changes)
    return variant(index, seed=seed, **values)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_txt2img_runs_the_familys_pipeline_and_a_batch_equals_its_images_made_alone(engines, name):
    engine = engines[name]
    made = engine.generate(batch(family_variant(name, 0, seed=5), family_variant(name, 1, seed=6)))
    assert type(engine.load()).__name__ == PIPELINES[name][0]
    assert [image.image.size for image in made] == [(64, 64), (64, 64)]
    alone = engine.generate(batch(family_variant(name, 1, seed=6)))[0]
    assert max_difference(made[1].image, alone.image) <= TOLERANCE
    assert max_difference(made[0].image, made[1].image) > 10  # the seeds differ, so do the images


@pytest.mark.parametrize("name", list(PIPELINES))
def test_img2img_runs_the_familys_image_to_image_pipeline_at_the_variants_size(engines, name):
    engine = engines[name]
    source = PIL.Image.new("RGB", (100, 80), "white")
    v = family_variant(name, seed=9, width=64, height=48, image="inputs/source.png", strength=0.6)
    made = engine.generate(batch(v), source_image=source)[0].image
    assert type(engine._image2image).__name__ == PIPELINES[name][1]
    assert made.size == (64, 48)
    txt2img = engine.generate(batch(family_variant(name, seed=9, width=64, height=48)))[0].image
    assert max_difference(made, txt2img) > 10


@pytest.mark.parametrize("name, words, expected", [
    # CLIP reads 77 tokens; SD 3's T5 reads 256, FLUX dev's 512, schnell's 256.
    ("sdxl", 100, ["prompt 1 is 102 tokens; the model reads only the first 77"]),
    ("sd3", 100, ["prompt 1 is 102 CLIP tokens; the CLIP text encoder reads only the first 77"]),
    ("sd3", 300, ["prompt 1 is 302 CLIP tokens; the CLIP text encoder reads only the first 77",
                  "prompt 1 is 301 T5 tokens; the T5 text encoder reads only the first 256"]),
    ("flux", 300, ["prompt 1 is 302 CLIP tokens; the CLIP text encoder reads only the first 77"]),
    ("flux", 600, ["prompt 1 is 602 CLIP tokens; the CLIP text encoder reads only the first 77",
                   "prompt 1 is 601 T5 tokens; the T5 text encoder reads only the first 512"]),
    ("flux-schnell", 300, ["prompt 1 is 302 CLIP tokens; the CLIP text encoder reads only the first 77",
                           "prompt 1 is 301 T5 tokens; the T5 text encoder reads only the first 256"]),
])
def test_each_text_encoder_warns_with_its_own_tokenizer_and_limit(tmp_path, name, words, expected):
    # A fresh engine from the folder: the warnings are counted without loading the model.
    engine = DiffusionEngine(str(save_family(name, tmp_path / name)), settings=Settings(device="cpu"))
    warnings = engine.prompt_warnings(["a cat", "cat " * words])
    assert [warning.split(":")[0].replace("prompt 2", "prompt 1") for warning in warnings] == expected
    assert all(warning.startswith("prompt 2") and warning.endswith(("is ignored", "is ignored by it"))
               for warning in warnings)
    assert engine.loaded is False


def test_flux_refuses_a_negative_prompt_it_cannot_use(engines):
    with pytest.raises(ValueError, match=r"variant `v000`: `negative` is not used by FLUX.1 models \(no classifier-free "
                                         r"guidance\), got 'blurry'"):
        engines["flux"].generate(batch(family_variant("flux", negative="blurry")))


@pytest.mark.parametrize("name", ["sd3", "flux"])
def test_transformer_models_refuse_deepcache_and_the_unet_samplers(engines, name):
    title = {"sd3": "Stable Diffusion 3 / 3.5", "flux": "FLUX.1"}[name]
    with pytest.raises(ValueError, match=rf"`deepcache` needs a UNet and {title} models have a transformer, got 3"):
        engines[name].generate(batch(family_variant(name, deepcache=3)))
    with pytest.raises(ValueError, match=r"`scheduler` of a flow-matching model \(SD 3, FLUX.1\) must be one of euler, "
                                         r"got 'dpmpp'"):
        engines[name].generate(batch(family_variant(name, scheduler="dpmpp")))


@pytest.mark.parametrize("name", list(PIPELINES))
def test_the_familys_tiny_vae_decodes_its_latents(engines, name):
    engine = engines[name]
    full = engine.generate(batch(family_variant(name, seed=4)))[0].image
    tiny = engine.generate(batch(family_variant(name, seed=4, tiny_vae=True)))[0].image
    assert tiny.size == full.size == (64, 64)
    assert max_difference(full, tiny) > 10  # another decoder, another image
    assert type(engine.load().vae).__name__ == "AutoencoderKL"  # put back after the call


def test_a_tiny_vae_of_another_family_is_refused_naming_the_one_that_fits(tmp_path):
    folder = save_family("flux", tmp_path / "flux")
    tiny_autoencoder(latent_channels=4).save_pretrained(tmp_path / "taesd")  # SD's, 4 channels
    engine = DiffusionEngine(str(folder), settings=Settings(device="cpu"), tiny_vae=str(tmp_path / "taesd"))
    with pytest.raises(ValueError, match=r"decodes 4-channel latents and FLUX.1 makes 16: use taef1"):
        engine.generate(batch(family_variant("flux", tiny_vae=True)))


def test_describe_names_the_family_and_the_config_hash_is_kept(engines):
    engine = engines["sd3"]
    engine.load()
    assert engine.describe()["family"] == "sd3"
    assert engine.config_sha256 == engine.facts.config_sha256 and len(engine.config_sha256) == 64
