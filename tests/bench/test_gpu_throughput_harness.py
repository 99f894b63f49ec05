"""The GPU throughput harness, run on CPU with the tiny model at 32 px: what it writes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "gpu_throughput.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("gpu_throughput", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_writes_json_and_markdown_for_every_variant_and_batch_size(harness, tmp_path):
    harness.main([
        "--arch", "tiny", "--device", "cpu", "--batch-sizes", "1,2", "--steps", "4", "--fewer-steps", "2",
        "--size", "32", "--runs", "2", "--peak-tflops", "1", "--out", str(tmp_path),
    ])
    result = json.loads((tmp_path / "gpu_throughput-tiny-32.json").read_text())
    assert (result["arch"], result["size"], result["steps"], result["runs"]) == ("tiny", 32, 4, 2)
    assert result["machine"]["device"] == "cpu"
    assert result["unet_step_tflop"] > 0 and result["ceiling_images_per_s"] > 0
    rows = [(row["variant"], row["batch_size"]) for row in result["results"]]
    # The seed made one image per call; our engine's variants run at every batch size.
    assert rows == [("seed", 1)] + [
        (variant, batch)
        for variant in ("eager", "compiled", "deepcache", "tiny-vae", "fewer-steps")
        for batch in (1, 2)
    ]
    for row in result["results"]:
        assert len(row["runs_s"]) == 2 and all(seconds > 0 for seconds in row["runs_s"])
        assert row["median_s"] > 0 and row["warmup_s"] > 0
        assert row["images_per_s"] == pytest.approx(row["batch_size"] / row["median_s"], rel=1e-3)
        assert row["seconds_per_image"] == pytest.approx(row["median_s"] / row["batch_size"], rel=1e-3)
        assert 0 < row["fraction_of_ceiling"] < 1
        assert row["peak_memory_gb"] is None  # no GPU: no GPU memory figure
        # Each row records the steps it ran, and its fraction is of the ceiling at those steps.
        assert row["steps"] == (2 if row["variant"] == "fewer-steps" else 4)
        ceiling = 1e12 / (result["unet_step_tflop"] * 1e12 * row["steps"])
        assert row["fraction_of_ceiling"] == pytest.approx(row["images_per_s"] / ceiling, rel=2e-3)
    diffs = {row["variant"]: row["max_pixel_diff_vs_eager"] for row in result["results"]}
    # On CPU no speed-up applies, so the engine's image is the eager image exactly...
    assert diffs["eager"] == diffs["compiled"] == 0
    # ...while the options a job must ask for do change it, and the table says by how much.
    assert diffs["deepcache"] > 0 and diffs["tiny-vae"] > 0 and diffs["fewer-steps"] > 0
    assert diffs["seed"] is None

    table = (tmp_path / "gpu_throughput-tiny-32.md").read_text()
    assert table.startswith("### tiny 32x32, 4 steps")
    assert "| variant | compile | dtype | steps | batch | images/s |" in table
    assert table.count("\n| seed |") == 1 and table.count("\n| compiled |") == 2
    assert table.count("\n| deepcache (interval 3) | - | float32 | 4 |") == 2
    assert table.count("\n| tiny-vae (tiny TAESD) | - | float32 | 4 |") == 2
    assert table.count("\n| fewer-steps | - | float32 | 2 |") == 2
    deepcache_rows = [line for line in table.splitlines() if line.startswith("| deepcache")]
    assert all(line.endswith(f"| {diffs['deepcache']} |") for line in deepcache_rows)


def test_refuses_options_that_would_not_change_the_image(harness, capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--arch", "tiny", "--steps", "10"])  # fewer-steps 15 is not fewer
    assert "`--fewer-steps` must be from 1 to `--steps` - 1 (9), got 15" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        harness.parse_args(["--arch", "tiny", "--variants", "eager,deepcache", "--deepcache-interval", "1"])
    assert "`--deepcache-interval` must be from 2 to 10, got 1" in capsys.readouterr().err
    assert harness.parse_args(["--arch", "tiny", "--steps", "10", "--variants", "eager,compiled"]).steps == 10


def test_refuses_a_size_that_is_not_a_multiple_of_8(harness, capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--arch", "tiny", "--size", "30"])
    assert "`--size` must be a multiple of 8, got 30" in capsys.readouterr().err


def test_flop_counts_of_a_full_and_a_deepcache_step_need_no_gpu(harness):
    # Counted on the meta device: SD 1.5's published UNet at 512x512, guided.
    full = harness.unet_step_flops("sd15", 512)
    cached = harness.unet_step_flops("sd15", 512, deepcache_cached=True)
    assert 1.5e12 < full < 1.7e12  # the "about 1.8 TFLOP" counts more than the UNet
    # A cached step still runs the outermost blocks, attention at 4,096 tokens included.
    assert 0.3 < cached / full < 0.5


def test_memory_counts_that_size_auto_batches_need_no_gpu(harness):
    from imagegen.generation.engine import CUDA_BYTES_PER_PIXEL

    decode = harness.vae_decode_activation_bytes("sd15", 512)
    # The engine's per-pixel figure is this count, so "auto" batches follow the model.
    assert abs(decode / (512 * 512) - CUDA_BYTES_PER_PIXEL) / CUDA_BYTES_PER_PIXEL < 0.05
    assert harness.vae_decode_activation_bytes("sd15", 512, tiny_vae=True) < decode / 3
    # Decoding, not the UNet, is what one more image costs at its peak.
    assert harness.unet_step_activation_bytes("sd15", 512) < decode / 2
