"""The GPU throughput harness, run on CPU with the tiny model at 32 px: what it writes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "gpu_throughput.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("gpu_throughput", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_json_and_markdown_for_every_variant_and_batch_size(harness, tmp_path):
    harness.main([
        "--arch", "tiny", "--device", "cpu", "--batch-sizes", "1,2", "--steps", "2", "--size", "32",
        "--runs", "2", "--peak-tflops", "1", "--out", str(tmp_path),
    ])
    result = json.loads((tmp_path / "gpu_throughput-tiny-32.json").read_text())
    assert (result["arch"], result["size"], result["steps"], result["runs"]) == ("tiny", 32, 2, 2)
    assert result["machine"]["device"] == "cpu"
    assert result["unet_step_tflop"] > 0 and result["ceiling_images_per_s"] > 0
    rows = [(row["variant"], row["batch_size"]) for row in result["results"]]
    # The seed made one image per call; our engine's variants run at every batch size.
    assert rows == [("seed", 1), ("eager", 1), ("eager", 2), ("compiled", 1), ("compiled", 2)]
    for row in result["results"]:
        assert len(row["runs_s"]) == 2 and all(seconds > 0 for seconds in row["runs_s"])
        assert row["median_s"] > 0 and row["warmup_s"] > 0
        assert row["images_per_s"] == pytest.approx(row["batch_size"] / row["median_s"], rel=1e-3)
        assert row["seconds_per_image"] == pytest.approx(row["median_s"] / row["batch_size"], rel=1e-3)
        assert 0 < row["fraction_of_ceiling"] < 1
        assert row["peak_memory_gb"] is None  # no GPU: no GPU memory figure
    # On CPU no speed-up applies, so the engine's image is the eager image exactly.
    assert all(row["max_pixel_diff_vs_eager"] == 0 for row in result["results"] if row["variant"] != "seed")

    table = (tmp_path / "gpu_throughput-tiny-32.md").read_text()
    assert table.startswith("### tiny 32x32, 2 steps")
    assert "| variant | compile | dtype | batch | images/s |" in table
    assert table.count("\n| seed |") == 1 and table.count("\n| compiled |") == 2


def test_refuses_a_size_that_is_not_a_multiple_of_8(harness, capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--arch", "tiny", "--size", "30"])
    assert "`--size` must be a multiple of 8, got 30" in capsys.readouterr().err
