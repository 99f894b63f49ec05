"""Throughput of devhost's durable engine: activity completions per second.

Two workloads of 1,000 no-op activities each, through the real Durable SDK and the
SQLite task hub:
  fan-out   one orchestration fanning out --fan activities (task_all)
  many      --instances orchestrations of --per-instance activities each, started together

For each: wall time from the first start to the last completion, activities/s, episodes
(orchestrator replays) and the delay from an activity being scheduled (its work row
committed) to it starting (p50/p95). Prints a markdown table.

  python bench/devhost_fanout.py                      # in-memory task hub
  python bench/devhost_fanout.py --store file         # WAL file in a temp dir
  python bench/devhost_fanout.py --activity-ms 2      # activities that take 2 ms each
  python bench/devhost_fanout.py --profile fan-out    # cProfile top functions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import pstats
import tempfile
import time
from pathlib import Path

import azure.durable_functions as df

from devhost.durable import DurableEngine, Registry

app = df.DFApp()


ACTIVITY_SECONDS = 0.0    # --activity-ms: make each activity take this long (time.sleep)


@app.activity_trigger(input_name="value")
def noop(value):
    if ACTIVITY_SECONDS:
        time.sleep(ACTIVITY_SECONDS)
    return value


@app.orchestration_trigger(context_name="context")
def fan(context):
    results = yield context.task_all([context.call_activity("noop", i) for i in range(context.get_input())])
    return len(results)


REGISTRY = Registry.from_functions(app.get_functions())


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def measure(store: str, max_activities: int, instances: int, per_instance: int) -> dict:
    engine = DurableEngine(REGISTRY, store, max_activities=max_activities)
    await engine.start()
    try:
        began = time.perf_counter()
        ids = [await engine.start_new("fan", None, json.dumps(per_instance)) for _ in range(instances)]
        for instance_id in ids:
            status = await engine.wait_for(instance_id, 600)
            if status is None or status["output"] != per_instance:
                raise RuntimeError(f"instance {instance_id} did not complete: {status}")
        elapsed = time.perf_counter() - began
        delays = list(engine.stats.start_delays)
        total = instances * per_instance
        return {"activities": total, "seconds": elapsed, "per_second": total / elapsed,
                "episodes": engine.stats.episodes, "replay_s": engine.stats.episode_seconds,
                "p50_ms": 1000 * percentile(delays, 0.50), "p95_ms": 1000 * percentile(delays, 0.95)}
    finally:
        await engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["memory", "file"], default="memory")
    parser.add_argument("--max-activities", type=int, default=10)
    parser.add_argument("--fan", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--per-instance", type=int, default=10)
    parser.add_argument("--activity-ms", type=float, default=0.0,
                        help="each activity sleeps this long (0: no-op)")
    parser.add_argument("--profile", choices=["fan-out", "many"], default=None)
    args = parser.parse_args()
    global ACTIVITY_SECONDS
    ACTIVITY_SECONDS = args.activity_ms / 1000

    workloads = {"fan-out": (1, args.fan), "many": (args.instances, args.per_instance)}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for label, (instances, per_instance) in workloads.items():
            store = ":memory:" if args.store == "memory" else str(Path(scratch) / f"{label}.sqlite")
            profiler = cProfile.Profile() if args.profile == label else None
            if profiler:
                profiler.enable()
            result = asyncio.run(measure(store, args.max_activities, instances, per_instance))
            if profiler:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            rows.append((f"{label} ({instances} x {per_instance})", result))

    print(f"\nstore={args.store} max_activities={args.max_activities} activity_ms={args.activity_ms} python={platform.python_version()} "
          f"cpus={os.cpu_count()} machine={platform.machine()}\n")
    print("| workload | activities | seconds | activities/s | episodes | replay s | start delay p50 | p95 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, r in rows:
        print(f"| {label} | {r['activities']} | {r['seconds']:.2f} | {r['per_second']:.0f} | {r['episodes']} | {r['replay_s']:.2f} "
              f"| {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms |")


if __name__ == "__main__":
    main()
