"""How many images a second one checker process signs, checks and stores.

On a GPU the engine makes images faster than on this CPU; the checker
(`imagegen.service.output_checks`) must keep up, or it becomes the job's bottleneck. This times
the checker alone, on this machine's CPU, at the sizes the GPU bench makes (512x512 for
SD 1.5, 1024x1024 for SDXL): GPU calls of --call images, each encoded as PNG, signed with
the local C2PA signer, checked by the local NSFW model and written to a private Azurite,
submitted back to back to one checker process (IMAGEGEN_CHECK_PROCESSES=1) as
`generate_images` does. The images are photo-like (smooth shapes, fine grain), not noise,
which PNG compresses far worse than a real image.

Prints images/s per checker process and how many processes a GPU making --target
images/s would need; the median of --runs. Stages per image come from the checker's spans.

  python bench/checker_throughput.py [--sizes 512,1024] [--images 32] [--call 8] [--runs 3]
                                [--target 10] [--json bench/results/output_checks.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from devhost.azurite import free_port, start_azurite  # noqa: E402


def photo_like(size: int, seed: int) -> Image.Image:
    """A smooth random image with some grain: compresses like a photograph, not like noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((size, size), Image.BICUBIC)
    smooth = np.asarray(coarse.filter(ImageFilter.GaussianBlur(size / 64)), dtype=np.int16)
    grain = rng.normal(0, 6, smooth.shape).astype(np.int16)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


def gpu_calls(size: int, images: int, call: int, job_id: str) -> list:
    from imagegen.jobs.spec import parse_job
    from imagegen.jobs.variants import expand
    from imagegen.service.output_checks import GpuCall

    variants = expand(parse_job({"name": "checks", "prompts": [{"text": "a red sneaker"}],
                                 "variants": {"seeds": images, "sizes": [f"{size}x{size}"], "steps": 25}}))
    now = "2026-01-01T00:00:00+00:00"
    return [GpuCall(job_id=job_id, variants=variants[i:i + call],
                    images=[photo_like(size, seed=i + k) for k in range(len(variants[i:i + call]))],
                    seconds=[1.0] * len(variants[i:i + call]), started=now, finished=now,
                    model="bench", revision=None, device="cuda")
            for i in range(0, images, call)]


def time_checker(calls: list, services) -> float:
    """Seconds from the first submit to the last call's result, every image checked `safe`
    or not: the checker's throughput when GPU calls come faster than it keeps up."""
    began = time.perf_counter()
    futures = [services.checker.submit(call) for call in calls]
    checked = [image for future in futures for image in future.result()]
    seconds = time.perf_counter() - began
    assert len(checked) == sum(len(call.variants) for call in calls)
    return seconds


def stage_seconds(trace_file: Path, images: int) -> dict[str, float]:
    """Seconds per image in each of the checker's spans, from its telemetry file."""
    sums: dict[str, float] = {}
    names = {"c2pa_sign": "sign", "safety.check_images": "safety model", "check_images": "whole check"}
    for line in trace_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("record") != "span":
            continue
        name = record["name"]
        stage = names.get(name) or ("storage" if name.startswith("BlobClient.") else None)
        if stage:
            sums[stage] = sums.get(stage, 0.0) + record["duration_s"]
    return {stage: round(seconds / images, 4) for stage, seconds in sorted(sums.items())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--call", type=int, default=8, help="images per GPU call")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", type=float, default=10.0, help="the GPU's images/s to keep up with")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    azurite = start_azurite(workdir / "azurite", blob_port=free_port(), queue_port=free_port(), table_port=free_port())
    trace_file = workdir / "telemetry.jsonl"
    # The host reads these from its environment; its checker process is handed the settings.
    environment = dict(os.environ)
    os.environ.update({"AzureWebJobsStorage": azurite.connection_string, "SAFETY_PROVIDER": "local",
                       "IMAGEGEN_TELEMETRY_FILE": str(trace_file), "IMAGEGEN_CHECK_PROCESSES": "1"})
    from imagegen.core.settings import Settings
    from imagegen.service.services import Services

    services = Services(Settings.from_env())
    load_before = os.getloadavg()
    results = []
    try:
        services.checker.start()
        time_checker(gpu_calls(64, 2, 2, "bench-warm"), services)  # the checker loads its models
        for size in (int(s) for s in args.sizes.split(",") if s):
            runs = []
            for run in range(args.runs):
                calls = gpu_calls(size, args.images, args.call, f"bench-{size}-{run}")
                trace_file.write_text("")
                runs.append(time_checker(calls, services))
            rate = args.images / statistics.median(runs)
            results.append({
                "size": size, "images": args.images, "call": args.call, "runs_s": [round(s, 3) for s in runs],
                "images_per_s": round(rate, 2), "processes_for_target": math.ceil(args.target / rate),
                "seconds_per_image": stage_seconds(trace_file, args.images),  # the last run's
            })
    finally:
        services.close()
        os.environ.clear()
        os.environ.update(environment)
        azurite.stop(timeout=1)
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"python {platform.python_version()}",
              "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
              "target_images_per_s": args.target, "results": results}
    print(f"one checker process on {report['machine']}; load average {report['load_average'][0]} before / "
          f"{report['load_average'][1]} after\n")
    print(f"| size | images/s | processes for {args.target:g} images/s | seconds per image by stage |")
    print("|---:|---:|---:|---|")
    for r in results:
        stages = ", ".join(f"{k} {v:.3f}" for k, v in r["seconds_per_image"].items())
        print(f"| {r['size']}x{r['size']} | {r['images_per_s']:.1f} | {r['processes_for_target']} | {stages} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
