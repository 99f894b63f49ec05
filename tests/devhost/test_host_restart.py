"""A host killed mid fan-out and started again over the same store finishes the work:
every activity's effect is present exactly once (activities are at-least-once, so the
sample activity records its key idempotently), and a SIGTERM stops the host cleanly."""

from __future__ import annotations

import signal

from tests.waiting import wait_until

KEYS = [f"k{index:03d}" for index in range(12)]


def test_sigkill_mid_fan_out_then_restart_completes_every_activity_once(tmp_path, launch):
    store, effects = tmp_path / "taskhub.sqlite", tmp_path / "effects"
    first = launch(tmp_path / "first", store=store, effects_dir=effects)
    try:
        started = first.start("fan_out_fan_in", {"run": "crash", "count": len(KEYS), "delay": 0.5},
                              instance_id="fan-out-killed")
        # Kill once some activities have recorded their effect and before all have: 4 run at
        # a time (host.json), 0.5 s each, so the first wave lands 1 s before the last.
        recorded = wait_until(lambda: first.effects("crash"), lambda keys: len(keys) >= 2, timeout=60,
                              interval=0.05, what="two effects of the fan-out", context=first.log)
        assert len(recorded) < len(KEYS), first.log()
    finally:
        first.stop(signal.SIGKILL)
    assert first.process.returncode == -signal.SIGKILL

    second = launch(tmp_path / "second", store=store, effects_dir=effects)
    try:
        done = second.wait_until(started["id"])
        assert done["runtimeStatus"] == "Completed", done
        assert sorted(done["output"]["keys"]) == KEYS
        recorded = first.effects("crash")
        assert sorted(recorded) == KEYS  # each key once: none lost, none doubled
    finally:
        code = second.stop(signal.SIGTERM)
    assert code == 0, second.log()
    assert "devhost stopping" in second.log()
