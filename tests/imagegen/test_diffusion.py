"""The diffusion engine on the tiny model, on CPU: 64 px images, 2-3 steps."""

from __future__ import annotations

import threading
from typing import get_args

import numpy as np
import PIL.Image
import pytest
import torch

from imagegen.core.settings import Settings
from imagegen.core.types import Batch, Scheduler, Variant
from imagegen.generation import engine as diffusion
from imagegen.generation.engine import DiffusionEngine, GeneratedImage
from imagegen.service.services import Services
from tests.imagegen.tiny_families import tiny_sdxl_pipeline

TOLERANCE = 2  # out of 255: thread counts change the last bit of float sums


def variant(index: int = 0, seed: int = 1, **changes) -> Variant:
    values = dict(
        id=f"v{index:03d}", index=index, prompt_index=0, prompt="a red sneaker, studio lighting",
        base_prompt="a red sneaker", negative="blurry", seed=seed, width=64, height=64,
        guidance=7.0, steps=3, scheduler="dpmpp",
    )
    values.update(changes)
    return Variant(**values)


def batch(*variants: Variant) -> Batch:
    return Batch(id="b000", variants=list(variants))


def pixels(image: PIL.Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def max_difference(a: PIL.Image.Image, b: PIL.Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine() -> DiffusionEngine:
    return DiffusionEngine("tiny", settings=Settings(device="cpu"))


def test_txt2img_makes_one_image_per_variant_in_order(engine):
    out = engine.generate(batch(variant(0, seed=5), variant(1, seed=6, width=96, height=64)))
    assert [image.variant_id for image in out] == ["v000", "v001"]
    assert all(isinstance(image, GeneratedImage) for image in out)
    assert [image.image.size for image in out] == [(64, 64), (96, 64)]
    assert all(image.image.mode == "RGB" and image.seconds > 0 for image in out)


def test_a_batch_of_four_equals_the_same_four_made_one_by_one(engine):
    variants = [variant(i, seed=100 + i) for i in range(4)]
    together = engine.generate(batch(*variants))
    for made, alone in zip(together, (engine.generate(batch(v))[0] for v in variants)):
        assert max_difference(made.image, alone.image) <= TOLERANCE


def test_same_seed_same_image_across_calls(engine):
    first = engine.generate(batch(variant(seed=42)))[0].image
    second = engine.generate(batch(variant(seed=42)))[0].image
    assert max_difference(first, second) <= TOLERANCE


def test_different_seeds_give_different_images(engine):
    a, b = engine.generate(batch(variant(0, seed=1), variant(1, seed=2)))
    assert np.abs(pixels(a.image) - pixels(b.image)).mean() > 5


@pytest.mark.parametrize("scheduler", get_args(Scheduler))
def test_every_scheduler_runs(engine, scheduler):
    out = engine.generate(batch(variant(0, seed=3, scheduler=scheduler, steps=2)))
    assert out[0].image.size == (64, 64)
    assert pixels(out[0].image).std() > 1  # an image, not a blank


def test_img2img_depends_on_the_source_and_takes_the_variants_size(engine):
    noise = np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)
    sources = [PIL.Image.fromarray(noise), PIL.Image.new("RGB", (100, 80), "white")]
    v = variant(seed=9, width=64, height=48, image="inputs/source.png", strength=0.6)
    from_noise, from_white = (engine.generate(batch(v), source_image=s)[0].image for s in sources)
    txt2img = engine.generate(batch(variant(seed=9, width=64, height=48)))[0].image
    assert from_noise.size == from_white.size == (64, 48)
    assert max_difference(from_noise, from_white) > 10
    assert max_difference(from_noise, txt2img) > 10
    again = engine.generate(batch(v), source_image=sources[0])[0].image
    assert max_difference(from_noise, again) <= TOLERANCE


def test_img2img_without_a_source_image_is_refused(engine):
    v = variant(image="inputs/source.png", strength=0.5)
    with pytest.raises(ValueError, match=r"variant `v000`: `image` is 'inputs/source.png' but no source image"):
        engine.generate(batch(v))


def test_model_loads_once_when_two_threads_ask_at_once(monkeypatch):
    calls = []
    real_load = diffusion.load_text2image
    barrier = threading.Barrier(2)

    def counting_load(*args, **kwargs):
        calls.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(diffusion, "load_text2image", counting_load)
    engine = DiffusionEngine("tiny", settings=Settings(device="cpu"))
    pipes = []

    def ask():
        barrier.wait()
        pipes.append(engine.load())

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert pipes[0] is pipes[1]


def test_services_keep_one_engine_per_model_and_revision():
    services = Services(Settings())  # IMAGEGEN_MODEL's default: tiny
    assert services.engine() is services.engine("tiny") is services.engine("tiny", "tiny-v1")
    with pytest.raises(ValueError, match=r"`revision` of model `tiny` must be 'tiny-v1', got 'tiny-v0'"):
        services.engine("tiny", "tiny-v0")


def test_prompt_warnings_name_the_prompt_its_length_and_the_dropped_words(engine):
    # Common words are one token each in the tiny tokenizer: 12 * 7 + 4 + start and end = 90.
    long_prompt = "a photo of a red sneaker, " * 12 + "in the studio light"
    warnings = engine.prompt_warnings(["a cat", long_prompt])
    assert len(warnings) == 1
    assert warnings[0].startswith("prompt 2 is 90 tokens; the model reads only the first 77: '...")
    assert warnings[0].endswith("in the studio light' is ignored")


def test_describe_says_what_runs_where(engine):
    engine.load()
    description = engine.describe()
    assert description["device"] == "cpu" and description["dtype"] == "float32"
    assert description["gpu_name"] is None and description["gpu_memory_gb"] is None
    assert description["model"] == "tiny" and description["revision"] == "tiny-v1"
    assert description["loaded"] is True
    assert "noise" in description["note"]


def test_max_batch_size_from_setting_or_cpu_default():
    assert DiffusionEngine("tiny", settings=Settings(device="cpu", max_batch="3")).max_batch_size(512, 512) == 3
    assert DiffusionEngine("tiny", settings=Settings(device="cpu")).max_batch_size(512, 512) == 4
    # A bad value never reaches the engine: the settings refuse it when they are made.
    with pytest.raises(ValueError, match=r"`IMAGEGEN_MAX_BATCH` must be `auto` or a whole number from 1 to 64, got 'lots'"):
        Settings(device="cpu", max_batch="lots")


# --- models from a local folder: the from_pretrained path, offline ----------------------


def test_a_model_folder_loads_and_matches_the_same_weights_built_in_memory(engine, tmp_path):
    from imagegen.generation.tiny_model import build_tiny_pipeline

    build_tiny_pipeline().save_pretrained(tmp_path)
    from_folder = DiffusionEngine(str(tmp_path), settings=Settings(device="cpu"))
    v = variant(seed=11)
    assert max_difference(from_folder.generate(batch(v))[0].image, engine.generate(batch(v))[0].image) <= TOLERANCE
    assert from_folder.describe()["model"] == str(tmp_path) and "note" not in from_folder.describe()


def test_an_sdxl_family_folder_runs_txt2img_and_img2img(tmp_path):
    tiny_sdxl_pipeline().save_pretrained(tmp_path)
    xl = DiffusionEngine(str(tmp_path), settings=Settings(device="cpu"))
    # One variant with a negative prompt, one without, in one call.
    made = xl.generate(batch(variant(0, seed=1), variant(1, seed=2, negative="")))
    assert type(xl.load()).__name__ == "StableDiffusionXLPipeline"
    assert [image.image.size for image in made] == [(64, 64), (64, 64)]
    alone = xl.generate(batch(variant(1, seed=2, negative="")))[0]
    assert max_difference(made[1].image, alone.image) <= TOLERANCE
    v = variant(seed=3, width=64, height=48, image="inputs/source.png", strength=0.5)
    assert xl.generate(batch(v), source_image=made[0].image)[0].image.size == (64, 48)
    assert xl.prompt_warnings(["cat " * 90])[0].startswith("prompt 1 is 92 tokens")


def test_prompt_warnings_read_the_folders_tokenizer_without_loading_the_model(tmp_path):
    from imagegen.generation.tiny_model import build_tiny_pipeline

    build_tiny_pipeline().save_pretrained(tmp_path)
    from_folder = DiffusionEngine(str(tmp_path), settings=Settings(device="cpu"))
    assert from_folder.prompt_warnings(["a cat", "cat " * 90])[0].startswith("prompt 2 is 92 tokens")
    assert from_folder.describe()["loaded"] is False


# --- settings and inputs that cannot work say why ---------------------------------------


def test_loading_the_tiny_model_warns_loudly_once(caplog):
    fresh = DiffusionEngine("tiny", settings=Settings(device="cpu"))
    with caplog.at_level("WARNING", logger="imagegen.generation.engine"):
        fresh.load()
        fresh.load()
    noise_warnings = [r for r in caplog.records if "NOISE" in r.getMessage()]
    assert len(noise_warnings) == 1 and noise_warnings[0].levelname == "WARNING"


@pytest.mark.parametrize("changes, message", [
    (dict(image="inputs/a.png", strength=1.5), r"`strength` must be in \(0, 1\] for img2img, got 1.5"),
    (dict(image="inputs/a.png", strength=None), r"`strength` must be in \(0, 1\] for img2img, got None"),
])
def test_a_variant_that_cannot_be_generated_is_refused_before_any_work(engine, changes, message):
    source = PIL.Image.new("RGB", (64, 64))
    with pytest.raises(ValueError, match=r"batch `b000` variant `v000`: " + message):
        engine.generate(batch(variant(**changes)), source_image=source)


def test_device_setting_is_checked():
    with pytest.raises(ValueError, match=r"`IMAGEGEN_DEVICE` must be auto, cuda, mps or cpu, got 'gpu'"):
        diffusion.pick_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match=r"`IMAGEGEN_DEVICE` is `cuda` but torch sees no CUDA GPU"):
            diffusion.pick_device("cuda")
    assert diffusion.pick_device("cpu").type == "cpu"


def test_schedulers_keep_the_models_noise_schedule_and_prediction_type():
    from diffusers import DDIMScheduler

    from imagegen.generation.schedulers import SCHEDULERS, make_scheduler

    # An SD 2.x 768 model predicts v, not noise: every scheduler must keep that.
    config = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                           prediction_type="v_prediction").config
    for name, cls in SCHEDULERS.items():
        scheduler = make_scheduler(name, config)
        assert type(scheduler) is cls
        assert scheduler.config.prediction_type == "v_prediction"
        assert scheduler.config.beta_schedule == "scaled_linear"
    with pytest.raises(ValueError, match=r"`scheduler` must be one of dpmpp, euler, euler_a, ddim, lcm, got 'plms'"):
        make_scheduler("plms", config)
