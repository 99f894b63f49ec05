"""CPU seconds per image of the tiny model, through the engine the app uses.

What a test or the local demo costs per image: 64 and 256 px, 4 and 25 steps, batch 1
and 4, DPM-Solver++ with guidance (two UNet passes per step). One warm-up call per
shape is not timed; each figure is the median of --runs calls. Prints a markdown table,
with the load average, because other work on the machine changes these figures.

  python bench/cpu_tiny.py [--runs 3] [--threads 1] [--json bench/results/cpu_tiny.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from imagegen.core.settings import Settings
from imagegen.core.types import Batch, Variant
from imagegen.generation.engine import DiffusionEngine

SIZES = (64, 256)
STEPS = (4, 25)
BATCHES = (1, 4)


def batch_of(count: int, size: int, steps: int) -> Batch:
    variants = [
        Variant(
            id=f"v{i:03d}", index=i, prompt_index=0, prompt="a red sneaker, studio lighting",
            base_prompt="a red sneaker", seed=i, width=size, height=size, guidance=7.0,
            steps=steps, scheduler="dpmpp",
        )
        for i in range(count)
    ]
    return Batch(id="b000", variants=variants)


def measure(engine: DiffusionEngine, size: int, steps: int, count: int, runs: int) -> dict:
    batch = batch_of(count, size, steps)
    engine.generate(batch)  # warm-up: first use of this shape
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        engine.generate(batch)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {"size": size, "steps": steps, "batch": count, "runs_s": [round(s, 4) for s in seconds],
            "seconds_per_image": median / count}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    engine = DiffusionEngine("tiny", settings=Settings(device="cpu"))
    engine.load()
    load_before = os.getloadavg()[0]
    rows = [measure(engine, size, steps, count, args.runs) for size in SIZES for steps in STEPS for count in BATCHES]
    load_after = os.getloadavg()[0]

    print(f"tiny model on CPU, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, "
          f"load average {load_before:.1f} before / {load_after:.1f} after; median of {args.runs} runs")
    print()
    print("| size | steps | batch | s/image |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['size']} | {row['steps']} | {row['batch']} | {row['seconds_per_image']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"load_average": [load_before, load_after], "rows": rows}, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
