"""The `imagegen status` line says what a job cost the GPU."""

from __future__ import annotations

from imagegen.cli.job_lines import summary_line


def job(**summary) -> dict:
    return {"id": "j-1", "status": "completed", "summary": {"ok": 4, **summary}}


def test_an_ended_job_shows_its_gpu_seconds_and_its_cost_when_priced():
    assert summary_line(job(gpu_seconds=12.34, estimated_cost=0.0116)) == (
        "j-1: completed (4 ok); GPU 12.3 s, estimated cost 0.0116")
    assert summary_line(job(gpu_seconds=12.34)) == "j-1: completed (4 ok); GPU 12.3 s"
    assert summary_line(job()) == "j-1: completed (4 ok)"  # a summary from before costs were recorded
