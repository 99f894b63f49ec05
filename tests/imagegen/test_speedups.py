"""The speed-ups: DeepCache and the tiny VAE (they change the image, only when a job asks),
and batch padding for a compiled engine (it must not change any image). Tiny model, CPU."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import PIL.Image
import pytest
import torch

from imagegen.core.settings import Settings
from imagegen.generation.deepcache import deep_blocks, deepcache
from imagegen.generation.engine import DiffusionEngine, speedups
from imagegen.generation.tiny_model import build_tiny_pipeline
from tests.imagegen.test_diffusion import TOLERANCE, batch, max_difference, pixels, variant
from tests.imagegen.tiny_families import tiny_sdxl_pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine() -> DiffusionEngine:
    return DiffusionEngine("tiny", settings=Settings(device="cpu"))


@contextmanager
def deepcache_counts(unet: torch.nn.Module):
    """Counts, within the block, the UNet calls in which the mid block really computed (a
    cached step only hands back its last result, so its children do not run)."""
    calls = [0]
    handle = unet.mid_block.resnets[0].register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def run(pipe, seeds: list[int], steps: int = 7, **sizes) -> np.ndarray:
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    return pipe(prompt=["a red sneaker"] * len(seeds), negative_prompt=["blurry"] * len(seeds),
                num_inference_steps=steps, generator=generators, output_type="np", **sizes).images


# --- DeepCache itself -------------------------------------------------------------------


@pytest.mark.parametrize("make_pipe, sizes", [
    (build_tiny_pipeline, dict(width=64, height=64)),  # SD 1.x layout
    (tiny_sdxl_pipeline, dict(width=64, height=64)),  # SDXL layout: text_time, no attention at the top
], ids=["sd", "sdxl"])
def test_deepcache_runs_the_deep_blocks_only_every_interval_steps(make_pipe, sizes):
    pipe = make_pipe()
    pipe.set_progress_bar_config(disable=True)
    with deepcache_counts(pipe.unet) as deep_work:
        full = run(pipe, [1], **sizes)
    assert deep_work == [7]
    with deepcache_counts(pipe.unet) as deep_work, deepcache(pipe.unet, 3) as counts:
        cached = run(pipe, [1], **sizes)
    assert counts == {"full": 3, "cached": 4}  # steps 0, 3, 6 are whole
    assert deep_work == [3]
    # It changes the image, but it is still the same picture, not another one.
    other_seed = run(pipe, [2], **sizes)
    moved = np.abs(cached - full).mean()
    assert 0 < moved < np.abs(other_seed - full).mean() / 3


def test_deepcache_interval_1_changes_nothing_and_blocks_are_restored_after_an_error():
    pipe = build_tiny_pipeline()
    plain = run(pipe, [5])
    with deepcache(pipe.unet, 1) as counts:
        assert np.array_equal(run(pipe, [5]), plain)
    assert counts == {"full": 0, "cached": 0}
    with pytest.raises(RuntimeError, match="boom"), deepcache(pipe.unet, 2):
        raise RuntimeError("boom")
    assert all("forward" not in vars(block) for block in deep_blocks(pipe.unet))
    assert np.array_equal(run(pipe, [5]), plain)  # no cached result leaks into later calls


@pytest.mark.parametrize("interval", [0, 11, "3"])
def test_deepcache_interval_is_checked(interval):
    with pytest.raises(ValueError, match=r"`deepcache` must be a whole number from 1 \(off\) to 10"):
        with deepcache(build_tiny_pipeline().unet, interval):
            pass


# --- through the engine, as a job asks -----------------------------------------------------


def test_deepcache_keeps_each_image_a_function_of_its_own_seed(engine):
    variants = [variant(i, seed=30 + i, steps=6, deepcache=2) for i in range(3)]
    together = engine.generate(batch(*variants))
    for made, v in zip(together, variants):
        assert max_difference(made.image, engine.generate(batch(v))[0].image) <= TOLERANCE
    plain = engine.generate(batch(variant(0, seed=30, steps=6)))[0].image
    assert max_difference(together[0].image, plain) > TOLERANCE  # it did change the image


def test_tiny_vae_decodes_the_same_latents_differently_and_keeps_the_size(engine):
    plain, tiny = engine.generate(batch(variant(0, seed=8), variant(1, seed=8, tiny_vae=True)))
    assert tiny.image.size == plain.image.size == (64, 64)
    assert np.abs(pixels(tiny.image) - pixels(plain.image)).mean() > 5
    again = engine.generate(batch(variant(1, seed=8, tiny_vae=True)))[0]
    assert max_difference(again.image, tiny.image) <= TOLERANCE
    assert engine.load().vae.__class__.__name__ == "AutoencoderKL"  # put back after the call


def test_tiny_vae_works_for_img2img(engine):
    source = PIL.Image.new("RGB", (64, 64), (200, 30, 30))
    v = variant(seed=4, image="inputs/source.png", strength=0.6, tiny_vae=True)
    assert engine.generate(batch(v), source_image=source)[0].image.size == (64, 64)


def test_a_real_model_without_a_tiny_vae_setting_refuses_tiny_vae(tmp_path):
    build_tiny_pipeline().save_pretrained(tmp_path)
    folder = DiffusionEngine(str(tmp_path), settings=Settings(device="cpu"))
    with pytest.raises(ValueError, match=r"`speedups.tiny_vae` needs a tiny VAE for model .* \(Stable Diffusion 1.x: taesd\), and it has none: set `IMAGEGEN_TINY_VAE`"):
        folder.generate(batch(variant(tiny_vae=True)))


def test_a_tiny_vae_folder_is_loaded_from_the_setting(tmp_path):
    from imagegen.generation.tiny_model import build_tiny_autoencoder

    build_tiny_pipeline().save_pretrained(tmp_path / "model")
    build_tiny_autoencoder().save_pretrained(tmp_path / "taesd")
    folder = DiffusionEngine(str(tmp_path / "model"), settings=Settings(device="cpu", tiny_vae=str(tmp_path / "taesd")))
    tiny = DiffusionEngine("tiny", settings=Settings(device="cpu"))
    v = variant(seed=9, tiny_vae=True)
    assert max_difference(folder.generate(batch(v))[0].image, tiny.generate(batch(v))[0].image) <= TOLERANCE


def test_a_variant_with_a_bad_deepcache_is_refused_before_any_work(engine):
    with pytest.raises(ValueError, match=r"variant `v000`: `deepcache` must be from 1 \(off\) to 10, got 12"):
        engine.generate(batch(variant(deepcache=12)))


# --- padding a compiled engine's calls -----------------------------------------------------


def test_padded_size_is_a_power_of_two_within_the_batch_limit():
    engine = DiffusionEngine("tiny", settings=Settings(device="cpu", max_batch="12"))
    v = variant()
    assert [engine.padded_size(v, n) for n in (1, 2, 3, 5, 8, 9, 12)] == [1, 2, 4, 8, 8, 12, 12]
    assert DiffusionEngine("tiny", settings=Settings(device="cpu")).pad_batches is False  # only compiled CUDA pads


def test_padding_a_call_changes_no_image_and_returns_only_the_asked_ones(engine):
    padded = DiffusionEngine("tiny", settings=Settings(device="cpu", max_batch="8"))
    padded.pad_batches = True  # what a compiled CUDA engine does
    calls = []
    pipe = padded.load()
    pipe.unet.register_forward_pre_hook(lambda _m, args: calls.append(args[0].shape[0]))
    variants = [variant(i, seed=70 + i) for i in range(3)]
    made = padded.generate(batch(*variants))
    assert [image.variant_id for image in made] == ["v000", "v001", "v002"]
    assert set(calls) == {8}  # 4 images, each guided and unguided
    for image, v in zip(made, variants):
        assert max_difference(image.image, engine.generate(batch(v))[0].image) <= TOLERANCE


def test_deepcache_on_a_compiled_unet_runs_the_module_under_the_compiler_and_gives_it_back():
    pipe = build_tiny_pipeline()
    compiled = torch.compile(pipe.unet)  # lazy: nothing compiles unless it is called
    pipe.unet = compiled
    with speedups(pipe, deepcache_interval=2) as sped_up:
        assert sped_up.unet is compiled._orig_mod  # DeepCache's swapped forwards are seen
        with deepcache_counts(sped_up.unet) as calls:
            run(sped_up, [1], steps=4)
    assert pipe.unet is compiled and calls == [2]  # whole UNet on steps 0 and 2 only
