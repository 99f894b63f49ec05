"""A whole job against the engine alone: how much of a job's time is making images.

For each --variants N: one prompt times N seeds (the tiny model, 128x128, 8 steps by
default), run two ways in one run:

  job     POST /api/jobs to a devhost serving this app over a private Azurite, with the
          local safety checks; wall time from the POST to the moment the orchestration
          ended, as its status records it (`lastUpdatedTime`; the client polls every
          0.25 s, which then adds nothing to the figure, and polling faster would load the
          host it measures). One warm-up job, then the median of --runs.
  engine  `DiffusionEngine.generate` on the same variants, in this process, in one call
          (on one torch thread on a CPU), the median of --runs calls after a warm-up call,
          each call right after a job, so that both medians come from the same minutes.

--model is the model both use: `tiny` (default), a hub id or folder, or `sd15-random` /
`sdxl-random`: that architecture with random weights (bench/gpu_throughput.py builds it;
speed does not depend on the weights' values), saved once under --model-cache as a model
folder the app loads like any other. --device is theirs too (default auto).

The job's images are compared with the engine's pixel for pixel (a fast job that made
other images would be no win). The breakdown per stage comes from the job's trace (the
spans `imagegen.core.telemetry` writes to the devhost's JSON-lines file): seconds spent in
each kind of span, summed over the job, and the wall time no span covers (queues,
replays, polling). Prints a markdown table with the load average, because other work on
a shared machine moves these figures.

  python bench/e2e_throughput.py [--variants 16,64] [--runs 3] [--size 128] [--steps 8]
                                 [--model tiny] [--device auto] [--foundry 5]
                                 [--json bench/results/e2e_throughput.json]

With --foundry RUNS it also times one-image requests to the sync Foundry route
(`POST /api/images/generations`): how long after its image's check the answer arrives.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from devhost.azurite import free_port, start_azurite  # noqa: E402
from imagegen.core.types import ENDED_STATES  # noqa: E402

PROMPT = "a red sneaker on a white background, studio lighting"
TERMINAL = ENDED_STATES
POLL_SECONDS = 0.25


def job_body(name: str, variants: int, size: int, steps: int) -> dict:
    """One prompt times `variants` seeds: every image in one engine call's settings."""
    return {"name": name, "prompts": [{"text": PROMPT}],
            "variants": {"seeds": variants, "sizes": [f"{size}x{size}"], "steps": steps}}


@dataclass
class Stack:
    """Azurite and a devhost serving this app, private to one bench run."""

    url: str
    connection_string: str
    trace_file: Path
    process: subprocess.Popen
    azurite: object
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.azurite.stop(timeout=1)


def start_stack(workdir: Path, env: dict[str, str] | None = None) -> Stack:
    azurite = start_azurite(workdir / "azurite", blob_port=free_port(), queue_port=free_port(),
                            table_port=free_port())
    port = free_port()
    trace_file = workdir / "devhost" / "telemetry.jsonl"
    log_path = workdir / "devhost.log"
    (workdir / "devhost").mkdir(parents=True, exist_ok=True)
    process_env = {
        **os.environ, "AzureWebJobsStorage": azurite.connection_string, "PYTHONUNBUFFERED": "1",
        "SAFETY_PROVIDER": "local", "IMAGEGEN_TELEMETRY_FILE": str(trace_file),
        "IMAGEGEN_SCHEDULE_TICK": "0 0 * * * *",  # the schedules timer, once an hour: out of the way
        "IMAGEGEN_RETENTION_TICK": "0 30 3 * * *",  # the retention timer, once a day
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(REPO_ROOT), "--port", str(port),
         "--store", str(workdir / "devhost" / "taskhub.sqlite")],
        cwd=REPO_ROOT, env=process_env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL)
    stack = Stack(f"http://127.0.0.1:{port}", azurite.connection_string, trace_file, process, azurite, log_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stack.stop()
            raise RuntimeError(f"devhost exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if requests.get(f"{stack.url}/admin/host/status", timeout=2).status_code == 200:
                return stack
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or still loading the app
        time.sleep(0.1)
    stack.stop()
    raise TimeoutError(f"devhost did not answer within 90 s:\n{log_path.read_text()[-4000:]}")


def run_job(url: str, body: dict, timeout: float = 900) -> tuple[str, float, dict]:
    """POST the job and poll it to a terminal status: (job id, seconds from the POST to the
    orchestration's end as its status records it, final status)."""
    posted = time.time()
    response = requests.post(f"{url}/api/jobs", json=body, timeout=60)
    if response.status_code != 202:
        raise RuntimeError(f"POST /api/jobs answered {response.status_code}: {response.text}")
    job_id = response.json()["jobId"]
    while time.time() - posted < timeout:
        status = requests.get(f"{url}/api/jobs/{job_id}", timeout=60).json()
        if status["status"] in TERMINAL:
            ended = datetime.fromisoformat(status["lastUpdatedTime"]).timestamp()
            return job_id, ended - posted, status
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"job {job_id} did not end within {timeout} s")


def engine_alone(body: dict, model: str, device: str):
    """A call that times `generate` of every variant at once, returning its seconds and the
    images' pixels; the engine is loaded and warmed up before the first."""
    import torch

    from imagegen.core.settings import Settings
    from imagegen.core.types import Batch
    from imagegen.generation.engine import DiffusionEngine
    from imagegen.jobs.spec import parse_job
    from imagegen.jobs.variants import expand

    engine = DiffusionEngine(model, settings=Settings(device=device))
    if engine.device.type == "cpu":
        torch.set_num_threads(1)
    variants = expand(parse_job(body))
    batch = Batch(id="b000", variants=variants)
    engine.generate(Batch(id="warm", variants=variants[:2]))  # load and warm up off the clock

    def timed_call() -> tuple[float, dict[str, bytes]]:
        began = time.perf_counter()
        images = engine.generate(batch)
        seconds = time.perf_counter() - began
        return seconds, {image.variant_id: image.image.convert("RGB").tobytes() for image in images}

    return timed_call


def job_pixels(connection_string: str, url: str, job_id: str) -> dict[str, bytes]:
    """The published images of a job, decoded, by variant id."""
    from PIL import Image

    from imagegen.storage.blobs import BlobStore

    store = BlobStore.from_connection_string(connection_string)
    manifest = requests.get(f"{url}/api/jobs/{job_id}/manifest", timeout=60).json()
    return {v["id"]: Image.open(io.BytesIO(store.get(v["blob"]))).convert("RGB").tobytes()
            for v in manifest["variants"] if v["status"] == "ok"}


def max_pixel_diff(job: dict[str, bytes], engine: dict[str, bytes]) -> int:
    """The largest difference of one colour value between the job's and the engine's images.

    0 when they are the same images; 1 or 2 is float noise from a different number of
    torch threads or images per call; anything more, or a missing image, is a different
    image (reported as 255).
    """
    import numpy as np

    if job.keys() != engine.keys():
        return 255
    diffs = [np.abs(np.frombuffer(job[k], np.uint8).astype(np.int16) - np.frombuffer(engine[k], np.uint8)).max()
             if len(job[k]) == len(engine[k]) else 255 for k in job]
    return int(max(diffs, default=0))


def manifest_generation_seconds(url: str, job_id: str) -> float:
    manifest = requests.get(f"{url}/api/jobs/{job_id}/manifest", timeout=60).json()
    return manifest["totals"]["seconds"]


def read_spans(trace_file: Path) -> list[dict]:
    if not trace_file.exists():
        return []
    spans = []
    for line in trace_file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("record") == "span":
                spans.append(record)
    return spans


def job_spans(spans: list[dict], job_id: str) -> list[dict]:
    """The spans of one job: its root span (attribute job.id) and every span in that trace."""
    roots = [s for s in spans if s.get("attributes", {}).get("job.id") == job_id and not s.get("parent_id")]
    if not roots:
        roots = [s for s in spans if s.get("attributes", {}).get("job.id") == job_id]
    traces = {s["trace_id"] for s in roots}
    return [s for s in spans if s["trace_id"] in traces]


# Span names -> the stage the issue asks for. Spans not named here count under their own name.
STAGES = {
    "moderate_text": "input checks", "moderate_image (input)": "input checks",
    "generate_images": "generation activity", "gpu_batch": "GPU calls",
    "encode_images": "encode images", "moderate_image": "output checks",
    "check_images": "output checks", "safety.check_image": "safety model", "safety.check_images": "safety model",
    "storage": "storage calls", "Content Safety": "Content Safety calls",
    "write_manifest": "manifest",
}


STORAGE_CLIENTS = ("BlobClient.", "ContainerClient.", "BlobServiceClient.")


def stage_seconds(spans: list[dict]) -> dict[str, float]:
    """Seconds per stage: each span's duration, summed by stage (spans overlap across stages)."""
    totals: dict[str, float] = {}
    for span in spans:
        name = span["name"]
        if name.startswith(STORAGE_CLIENTS):  # the Azure SDK's span of one storage call
            name = "storage"
        elif name.startswith("ContentSafetyClient."):
            name = "Content Safety"
        if name.startswith("activity "):
            name = name.removeprefix("activity ")
            if name == "moderate_image" and span.get("attributes", {}).get("check") == "input":
                name = "moderate_image (input)"
        stage = STAGES.get(name)
        if stage is None or not span.get("parent_id"):
            continue
        totals[stage] = totals.get(stage, 0.0) + span["duration_s"]
    return totals


def outside_spans(spans: list[dict], job_wall: float) -> float | None:
    """Wall time of the job not covered by any activity span: queues, replays, hand-offs."""
    covered = sorted((s["start"], s["end"]) for s in spans if s["name"].startswith("activity "))
    if not covered:
        return None
    union, current_start, current_end = 0.0, *covered[0]
    for start, end in covered[1:]:
        if start > current_end:
            union += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    union += current_end - current_start
    return max(0.0, job_wall - union)


def measure(stack: Stack, variants: int, size: int, steps: int, runs: int, check_images: bool,
            model: str = "tiny", device: str = "auto") -> dict:
    body = job_body(f"bench-{variants}", variants, size, steps)
    run_job(stack.url, body)  # warm-up: loads the model and the safety models in the host
    engine_call = engine_alone(body, model, device)
    walls, ids, generation, engine_runs = [], [], [], []
    # Job and engine take turns, so that both medians come from the same minutes of a
    # machine whose speed drifts (a shared VM).
    for _ in range(runs):
        job_id, wall, status = run_job(stack.url, body)
        if status["status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {status['status']}: {status}")
        walls.append(wall)
        ids.append(job_id)
        generation.append(manifest_generation_seconds(stack.url, job_id))
        seconds, engine_images = engine_call()
        engine_runs.append(seconds)
    median_index = sorted(range(runs), key=lambda i: walls[i])[runs // 2]
    median_job = ids[median_index]
    pixel_diff = None
    if check_images:
        pixel_diff = max_pixel_diff(job_pixels(stack.connection_string, stack.url, median_job), engine_images)
    time.sleep(0.5)  # the host writes its spans in batches
    spans = job_spans(read_spans(stack.trace_file), median_job)
    job_wall, engine_wall = statistics.median(walls), statistics.median(engine_runs)
    return {
        "variants": variants, "size": size, "steps": steps, "runs": runs,
        "job_runs_s": [round(w, 3) for w in walls], "job_s": job_wall,
        "engine_runs_s": [round(e, 3) for e in engine_runs], "engine_s": engine_wall,
        "ratio": job_wall / engine_wall,
        "generation_in_job_s": statistics.median(generation),
        "max_pixel_diff": pixel_diff, "median_job": median_job,
        "stages_s": stage_seconds(spans), "outside_activities_s": outside_spans(spans, walls[median_index]),
        "spans": len(spans),
    }


def measure_foundry(stack: Stack, size: int, steps: int, runs: int) -> dict:
    """The sync Foundry route, one image a request: seconds from the end of the image's
    check (its `check_images` span in the trace) to the answer reaching the client."""
    after_check, walls = [], []
    for seed in range(runs + 1):  # the first request is a warm-up
        body = {"prompt": f"{PROMPT}, take {seed}", "size": f"{size}x{size}", "steps": steps, "seed": seed}
        started = time.perf_counter()
        response = requests.post(f"{stack.url}/api/images/generations", json=body, timeout=120)
        answered, wall = time.time(), time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"the Foundry route answered {response.status_code}: {response.text}")
        if seed == 0:
            continue
        spans = job_spans(read_spans(stack.trace_file), response.json()["jobId"])
        checks = [s["end"] for s in spans if s["name"] == "check_images"]
        walls.append(wall)
        after_check.append(answered - max(checks) if checks else float("nan"))
    return {"runs": runs, "wall_s": statistics.median(walls), "after_check_s": statistics.median(after_check),
            "after_check_runs_s": [round(a, 4) for a in after_check]}


def random_weights_model(name: str, cache: Path) -> str:
    """`sd15-random` / `sdxl-random`: that architecture with random weights, saved once as
    a model folder under `cache`; any other name is returned as it is."""
    arch = {"sd15-random": "sd15", "sdxl-random": "sdxl"}.get(name)
    if arch is None:
        return name
    folder = cache / name
    if not (folder / "model_index.json").exists():
        import importlib.util

        import torch

        spec = importlib.util.spec_from_file_location("gpu_throughput", Path(__file__).with_name("gpu_throughput.py"))
        harness = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = harness
        spec.loader.exec_module(harness)
        cuda = torch.cuda.is_available()
        pipe = harness.build_pipeline(arch, torch.device("cuda" if cuda else "cpu"),
                                      torch.float16 if cuda else torch.float32)
        pipe.save_pretrained(folder)
    return str(folder)


def print_table(results: list[dict], load: tuple[float, float], model: str = "tiny", device: str = "auto") -> None:
    print(f"\n{model} model on {device}, devhost + Azurite + local safety; python {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} before / {load[1]:.1f} after\n")
    print("| variants | job wall | engine alone | job ÷ engine | generation inside the job (manifest) | max pixel diff |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['variants']} | {r['job_s']:.2f} s | {r['engine_s']:.2f} s | {r['ratio']:.2f}x "
              f"| {r['generation_in_job_s']:.2f} s | {r['max_pixel_diff']} |")
    stages = sorted({stage for r in results for stage in r["stages_s"]})
    if stages:
        print("\nSeconds per stage in the median job, from its trace (summed over spans; stages run "
              "side by side, so they add up to more than the wall):\n")
        print("| variants | " + " | ".join(stages) + " | wall outside activities |")
        print("|---:|" + "---:|" * (len(stages) + 1))
        for r in results:
            outside = r["outside_activities_s"]
            cells = [f"{r['stages_s'].get(stage, 0.0):.2f}" for stage in stages]
            print(f"| {r['variants']} | " + " | ".join(cells) + f" | {'' if outside is None else f'{outside:.2f}'} |")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="16,64", help="comma-separated job sizes (default 16,64)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--no-image-check", dest="check_images", action="store_false",
                        help="skip comparing the job's images with the engine's")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the devhost (repeatable), e.g. IMAGEGEN_MAX_BATCH=8")
    parser.add_argument("--foundry", type=int, default=0, metavar="RUNS",
                        help="also time RUNS one-image requests to the sync Foundry route (default 0: none)")
    parser.add_argument("--model", default="tiny", help="tiny, a hub id or folder, sd15-random or sdxl-random")
    parser.add_argument("--model-cache", type=Path, default=Path.home() / ".cache" / "durable-diffusion-bench",
                        help="where sd15-random / sdxl-random are saved once")
    parser.add_argument("--device", default="auto", help="auto, cuda or cpu: for the devhost and the engine alone")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    model = random_weights_model(args.model, args.model_cache)
    env = {"IMAGEGEN_MODEL": model, "IMAGEGEN_DEVICE": args.device,
           **dict(item.split("=", 1) for item in args.env)}
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="e2e-bench-") as scratch:
        stack = start_stack(Path(scratch), env)
        try:
            for variants in (int(v) for v in args.variants.split(",") if v):
                results.append(measure(stack, variants, args.size, args.steps, args.runs, args.check_images,
                                       model, args.device))
            foundry = measure_foundry(stack, args.size, args.steps, args.foundry) if args.foundry else None
        finally:
            stack.stop()
    load = (load_before, os.getloadavg()[0])
    print_table(results, load, args.model, args.device)
    if foundry:
        print(f"\nsync Foundry route, one image ({args.size}x{args.size}, {args.steps} steps), median of {foundry['runs']}: "
              f"answered in {foundry['wall_s']:.2f} s, {foundry['after_check_s'] * 1000:.0f} ms after its image was checked")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"load_average": load, "env": env, "results": results, "foundry": foundry}, indent=2) + "\n",
                             encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
