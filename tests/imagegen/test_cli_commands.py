"""`imagegen` commands against a scripted API (tests/imagegen/fake_api.py; the command: tests/cli_command.py), run as the real
command: exit codes by the job's final state, `wait`, `watch`, `list` page by page, `drop`
through the API, shell completion, and a thin client's imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imagegen.cli.exits import job_exit
from imagegen.core.types import JOB_STATES
from tests.cli_command import ROOT, cli_env, imagegen
from tests.imagegen.fake_api import FakeApi, job

# Every state maps through imagegen.cli.exits.JOB_EXITS; one of each exit code here.
STATES_AND_EXITS = [("completed", 0), ("partial", 3), ("rejected", 4), ("cancelled", 4), ("awaiting_review", 0)]


@pytest.fixture
def api():
    running = FakeApi(jobs={status: [job(status, status, done=2)] for status, _ in STATES_AND_EXITS})
    yield running
    running.close()


@pytest.mark.parametrize("status, code", STATES_AND_EXITS)
def test_status_exits_by_the_job_state(api, status, code):
    done = imagegen("status", status, "--url", api.url)
    assert done.returncode == code, done.stderr
    assert done.stdout.startswith(f"{status}: {status}")


def test_every_ended_state_has_its_exit_code_and_the_others_exit_0():
    assert {state: job_exit(state) for state in JOB_STATES} == {
        "queued": 0, "running": 0, "awaiting_review": 0, "completed": 0, "partial": 3,
        "rejected": 4, "failed": 4, "cancelled": 4}


def test_wait_follows_a_job_until_it_ends_and_exits_by_how_it_ended(api):
    api.jobs["j1"] = [job("j1", "queued"), job("j1", "running", done=1), job("j1", "awaiting_review", done=4),
                      job("j1", "partial", done=3)]
    done = imagegen("wait", "j1", "--url", api.url, "--interval", "0.05")
    assert (done.returncode, done.stdout, done.stderr) == (3, "j1: partial (3 ok, 1 failed)\n", "")
    assert api.gets("/api/jobs/j1") == 4  # through review, to the end

    done = imagegen("wait", "j1", "--url", api.url, "--json")
    assert done.returncode == 3 and json.loads(done.stdout)["status"] == "partial"


def test_submit_wait_exits_by_the_final_state(api, tmp_path):
    api.jobs["job-1"] = [job("job-1", "running"), job("job-1", "failed")]
    (tmp_path / "kites.txt").write_text("a kite\n")
    done = imagegen("submit", str(tmp_path / "kites.txt"), "--wait", "--interval", "0.05", "--url", api.url)
    assert done.returncode == 4, done.stderr
    assert done.stdout == "job-1\n"
    assert done.stderr.splitlines() == ["job-1: running [generating: 0/4]", "job-1: failed (4 failed)"]


def test_watch_json_prints_one_line_per_change_and_ends_at_the_final_state(api):
    api.jobs["j1"] = [job("j1", "queued", total=4),
                      job("j1", "running", done=0), job("j1", "running", done=0, updated="2030-01-01T00:00:01+00:00"),
                      job("j1", "running", done=2), job("j1", "running", done=2),
                      job("j1", "completed", done=4)]
    done = imagegen("watch", "j1", "--json", "--url", api.url, "--interval", "0.05")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(j["status"], (j.get("progress") or j["summary"])["ok"]) for j in lines] == [
        ("queued", 0), ("running", 0), ("running", 2), ("completed", 4)]
    assert api.gets("/api/jobs/j1") == 6


def test_watch_without_a_terminal_prints_a_line_per_change(api):
    api.jobs["j1"] = [job("j1", "running", done=1), job("j1", "running", done=1), job("j1", "rejected", done=0)]
    done = imagegen("watch", "j1", "--url", api.url, "--interval", "0.05")
    assert done.returncode == 4, done.stderr
    assert done.stdout.splitlines() == ["j1: running (1 ok) [generating: 1/4]", "j1: rejected (4 failed)"]


def listed_jobs(count: int) -> list[dict]:
    """`count` jobs, newest first, every third partial."""
    return [job(f"job-{n:03}", "partial" if n % 3 == 0 else "completed", created=f"2030-01-01T00:{n // 60:02}:{n % 60:02}")
            for n in reversed(range(count))]


@pytest.mark.parametrize("most_per_page", [200, 50])
def test_list_all_follows_the_continuation_token_to_the_last_page(most_per_page):
    listed = listed_jobs(450)
    api = FakeApi(listed=listed, most_per_page=most_per_page)
    try:
        done = imagegen("list", "--all", "--json", "--url", api.url)
        assert done.returncode == 0, done.stderr
        assert [j["id"] for j in json.loads(done.stdout)] == [j["id"] for j in listed]
        tokens = [query.get("continuationToken") for _, path, query, *_ in api.requests]
        assert tokens == [None] + [str(n) for n in range(most_per_page, 450, most_per_page)]
    finally:
        api.close()


def test_list_top_and_status_page_as_far_as_needed():
    listed = listed_jobs(450)
    api = FakeApi(listed=listed, most_per_page=50)
    try:
        done = imagegen("list", "--top", "120", "--status", "partial", "--url", api.url)
        assert done.returncode == 0, done.stderr
        partial = [j for j in listed if j["status"] == "partial"]
        rows = done.stdout.splitlines()
        assert [row.split()[3] for row in rows] == [j["id"] for j in partial[:120]]
        assert rows[0].split() == [partial[0]["createdTime"], "partial", "http", partial[0]["id"], partial[0]["name"]]
        # It asks for what is left; the API answers at most 50 a page.
        assert [(q["top"], q["status"]) for _, _, q, *_ in api.requests] == [
            ("120", "partial"), ("70", "partial"), ("20", "partial")]

        api.requests.clear()
        done = imagegen("list", "--url", api.url)  # the newest 20, one call
        assert [row.split()[3] for row in done.stdout.splitlines()] == [j["id"] for j in listed[:20]]
        assert [q for _, _, q, *_ in api.requests] == [{"top": "20"}]
    finally:
        api.close()


def test_drop_with_a_url_submits_the_file_through_the_api(api, tmp_path):
    (tmp_path / "kites.txt").write_text("a red kite\na blue kite\n")
    # A URL wins over a storage connection: the file goes through the API.
    env = cli_env(IMAGEGEN_URL=api.url, AzureWebJobsStorage="UseDevelopmentStorage=true")
    done = imagegen("drop", str(tmp_path / "kites.txt"), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "job-1\n" and f"through {api.url} as job job-1" in done.stderr
    [(method, path, query, content_type, body)] = api.requests
    assert (method, path, query) == ("POST", "/api/jobs", {"name": "kites"})
    assert content_type.startswith("text/plain") and body == b"a red kite\na blue kite\n"


def complete(line: str, tmp_path, **settings: str) -> list[str]:
    """What the shell would offer for `line` (argcomplete, as `register-python-argcomplete` runs it)."""
    answer = tmp_path / "completions"
    env = cli_env(_ARGCOMPLETE="1", _ARGCOMPLETE_IFS="\n", COMP_LINE=line, COMP_POINT=str(len(line)),
                  _ARGCOMPLETE_STDOUT_FILENAME=str(answer), **settings)
    done = subprocess.run([sys.executable, "-m", "imagegen.cli.main"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return sorted(answer.read_text().split())


def test_shell_completion_offers_commands_states_and_job_ids(tmp_path):
    assert complete("imagegen wa", tmp_path) == ["wait", "watch"]
    assert complete("imagegen list --status a", tmp_path) == ["awaiting_review"]
    api = FakeApi(listed=listed_jobs(12))
    try:
        assert complete("imagegen status job-01", tmp_path, IMAGEGEN_URL=api.url) == ["job-010", "job-011"]
    finally:
        api.close()
    # No app to ask: no job ids, and no error in the shell.
    assert complete("imagegen wait job", tmp_path, IMAGEGEN_URL="http://127.0.0.1:9") == []


def test_the_cli_imports_no_torch_diffusers_or_azure_functions():
    every_path = ("import sys, imagegen.cli.main, imagegen.cli.dropping\n"
                  "from imagegen.core.settings import Settings\n"
                  "from imagegen.storage.blobs import BlobStore\n"
                  "from imagegen.checks import provenance\n"
                  "import json\n"
                  "print(json.dumps(sorted({'.'.join(m.split('.')[:2 if m.startswith('azure.') else 1]) "
                  "for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", every_path], env=cli_env(), cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert not loaded & {"torch", "diffusers", "transformers", "azure.functions", "azure.durable_functions"}, loaded
