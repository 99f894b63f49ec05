"""The checker bench, run small: what it measures and writes, not how fast."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "checker_throughput.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("checker_throughput_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_small_run_times_one_checker_process_and_says_how_many_a_target_needs(bench, tmp_path):
    environment = dict(os.environ)
    out = tmp_path / "checks.json"
    bench.main(["--sizes", "64,128", "--images", "4", "--call", "2", "--runs", "1", "--target", "1000",
                "--json", str(out)])
    written = json.loads(out.read_text())
    assert [r["size"] for r in written["results"]] == [64, 128]
    for result in written["results"]:
        assert len(result["runs_s"]) == 1 and result["images_per_s"] > 0
        assert result["processes_for_target"] == math.ceil(1000 / result["images_per_s"])
        # Stages per image come from the checker process's own spans.
        assert {"whole check", "safety model", "sign", "storage"} <= result["seconds_per_image"].keys()
        assert result["seconds_per_image"]["safety model"] < result["seconds_per_image"]["whole check"]
    assert dict(os.environ) == environment  # the bench leaves the test process as it found it


def test_photo_like_images_compress_far_better_than_noise(bench):
    import io

    import numpy as np
    from PIL import Image

    def png_bytes(image):
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return len(buffer.getvalue())

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    assert png_bytes(bench.photo_like(256, seed=0)) < 0.8 * png_bytes(noise)
    assert bench.photo_like(256, seed=0).tobytes() != bench.photo_like(256, seed=1).tobytes()
