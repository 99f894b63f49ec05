"""The manifest accounts for every image the job made, wherever storage holds it.

Fail closed: an image whose check failed stays in quarantine, recorded `unchecked`;
the images of the same batch whose checks passed are published and recorded so.
"""

from __future__ import annotations

from tests.app.conftest import tiny_job
from tests.app.storage_invariants import storage_problems


def test_one_failed_check_holds_only_its_own_image(app, store):
    # `halfchecked-*` jobs: the first output check of the job raises (IMAGEGEN_FAULTS).
    job_id = app.submit(tiny_job("halfchecked", seeds=4))  # one GPU batch of 4
    done = app.wait(job_id)

    assert done["status"] == "partial", done
    assert done["summary"]["unchecked"] == 1 and done["summary"]["ok"] == 3, done
    manifest = app.manifest(job_id)
    unchecked = [v for v in manifest["variants"] if v["status"] == "unchecked"]
    assert len(unchecked) == 1 and unchecked[0]["blob"].startswith("quarantine/")
    assert "injected fault" in unchecked[0]["output_verdict"]["reasons"][0]
    published = [v for v in manifest["variants"] if v["status"] == "ok"]
    assert all(v["blob"].startswith("outputs/") for v in published)
    assert storage_problems(store, job_id, manifest) == []
