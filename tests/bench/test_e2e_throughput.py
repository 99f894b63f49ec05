"""The end-to-end throughput bench, run small: what it measures and writes, not how fast."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "e2e_throughput.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("e2e_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_small_run_times_the_job_and_the_engine_on_the_same_images(bench, tmp_path):
    out = tmp_path / "e2e.json"
    bench.main(["--variants", "3", "--runs", "1", "--size", "64", "--steps", "2", "--json", str(out)])
    written = json.loads(out.read_text())
    [result] = written["results"]
    assert (result["variants"], result["size"], result["steps"], result["runs"]) == (3, 64, 2, 1)
    assert len(result["job_runs_s"]) == len(result["engine_runs_s"]) == 1
    assert result["job_s"] > 0 and result["engine_s"] > 0
    assert result["ratio"] == pytest.approx(result["job_s"] / result["engine_s"])
    assert 0 < result["generation_in_job_s"] < result["job_s"]
    # The job published the engine's images: equal up to float noise from other thread counts.
    assert result["max_pixel_diff"] <= 2
    assert len(written["load_average"]) == 2
    # The breakdown comes from the job's trace in the devhost's telemetry file.
    assert {"input checks", "generation activity", "GPU calls", "output checks", "safety model",
            "storage calls", "manifest"} <= result["stages_s"].keys()
    assert all(seconds > 0 for seconds in result["stages_s"].values())
    assert 0 <= result["outside_activities_s"] < result["job_s"]


def span(name, start, end, parent="p", **attributes):
    return {"name": name, "trace_id": "t", "span_id": name + str(start), "parent_id": parent,
            "start": start, "end": end, "duration_s": end - start, "attributes": attributes}


def test_stages_sum_span_durations_by_stage_and_the_rest_is_outside_activities(bench):
    spans = [
        span("job", 0.0, 10.0, parent=None),
        span("activity moderate_text", 0.5, 1.0),
        span("activity generate_images", 1.0, 5.0),
        span("gpu_batch", 1.5, 4.5),
        span("activity generate_images", 2.0, 6.0),  # overlaps the first
        span("activity moderate_image", 6.5, 7.0),
        span("activity write_manifest", 9.0, 9.5),
    ]
    stages = bench.stage_seconds(spans)
    assert stages == {"input checks": 0.5, "generation activity": 8.0, "GPU calls": 3.0,
                      "output checks": 0.5, "manifest": 0.5}
    # Covered by activities: 0.5-6.0, 6.5-7.0, 9.0-9.5 = 6.5 s of the 10 s job.
    assert bench.outside_spans(spans, 10.0) == pytest.approx(3.5)
