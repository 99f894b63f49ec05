"""The `imagegen` CLI against the running app: submit, follow, download, drop; and the real
command (a subprocess) exiting by how each job ended, dropping through the API, listing."""

from __future__ import annotations

import json

import yaml
from PIL import Image

from imagegen.cli.main import main
from tests.app.conftest import BLOCKED_WORD, tiny_job
from tests.cli_command import cli_env, imagegen


def test_submit_wait_and_download_give_images_manifest_and_a_contact_sheet(app, tmp_path, capsys):
    job = tiny_job("cli-job")
    job["prompts"][0].update(image="local.png", strength=0.5)
    Image.new("RGB", (64, 64), (30, 160, 90)).save(tmp_path / "local.png")  # sent inline by the CLI
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")

    assert main(["--url", app.url, "submit", str(tmp_path / "job.yaml"), "--wait"]) == 0
    job_id = capsys.readouterr().out.strip().splitlines()[0]
    assert main(["--url", app.url, "download", job_id, "--to", str(tmp_path / "out")]) == 0

    folder = tmp_path / "out" / job_id
    manifest = json.loads((folder / "manifest.json").read_text())
    sheet = (folder / "index.html").read_text()
    for variant in manifest["variants"]:
        assert (folder / f"{variant['id']}.png").is_file()
        assert f"seed {variant['seed']}" in sheet and variant["prompt"] in sheet
    assert sheet.count("verdict safe (local") == len(manifest["variants"])

    assert main(["status", job_id, "--url", app.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"


def test_a_bad_job_file_prints_every_error_and_exits_1(app, tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("name: bad\nprompts: [{text: x}]\nvariants: {steps: 0}\n")
    assert main(["--url", app.url, "submit", str(tmp_path / "bad.yaml")]) == 1
    assert "variants.steps" in capsys.readouterr().err


def test_drop_uploads_into_the_prompts_container_and_starts_a_job(app, tmp_path, monkeypatch,
                                                                  storage_connection_string):
    monkeypatch.setenv("AzureWebJobsStorage", storage_connection_string)
    (tmp_path / "cli-drop.txt").write_text("a kite over the sea\n")
    assert main(["drop", str(tmp_path / "cli-drop.txt")]) == 0
    job = app.wait_for_job(lambda j: j["origin"] == "prompts/cli-drop.txt")
    assert app.wait(job["id"])["status"] == "completed"


def test_a_submitted_txt_file_runs_like_a_dropped_one(app, tmp_path, capsys):
    (tmp_path / "Kites.txt").write_text("# kites\na red kite\na blue kite\n")
    assert main(["--url", app.url, "submit", str(tmp_path / "Kites.txt"), "--wait"]) == 0
    job_id = capsys.readouterr().out.strip().splitlines()[0]
    manifest = app.manifest(job_id)
    assert manifest["name"] == "kites"
    assert [v["prompt"] for v in manifest["variants"]] == ["a red kite", "a blue kite"]
    # The deployment's defaults for prompt-only jobs (64x64 and 2 steps in these tests).
    assert {(v["width"], v["height"], v["steps"]) for v in manifest["variants"]} == {(64, 64, 2)}


def test_review_from_the_command_line_approves_and_rejects_by_short_id(app, tmp_path, capsys, store):
    job = {**tiny_job("cli-review", seeds=3), "review": {"timeout": "1h"}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job), encoding="utf-8")
    # --wait stops when the job awaits people, and says where to review it.
    assert main(["--url", app.url, "submit", str(tmp_path / "job.yaml"), "--wait"]) == 0
    out, err = capsys.readouterr()
    job_id = out.strip().splitlines()[0]
    assert f"/api/gallery/jobs/{job_id}" in err
    assert main(["--url", app.url, "status", job_id]) == 0
    assert capsys.readouterr().out.startswith(f"{job_id}: awaiting_review (3 ok); review: 0 approved, 0 rejected, 3 undecided until ")

    assert main(["--url", app.url, "review", job_id, "--approve", "v000,v002", "--reject", "v001",
                 "--note", "v001 is too dark", "--reviewer", "dana"]) == 0
    assert "2 approved, 1 rejected by dana" in capsys.readouterr().err
    assert app.wait(job_id)["status"] == "completed"
    assert main(["--url", app.url, "status", job_id]) == 0
    line = capsys.readouterr().out.strip()
    assert "; review: 2 approved, 1 rejected, 0 undecided; GPU " in line and line.endswith(" s"), line
    assert len(store.list("published", f"{job_id}/")) == 2
    assert main(["--url", app.url, "download", job_id, "--to", str(tmp_path / "out")]) == 0
    folder = tmp_path / "out" / job_id
    published = sorted(path.name[:4] for path in (folder / "published").iterdir())
    assert published == ["v000", "v002"] and len(list(folder.glob("*.png"))) == 3
    assert (folder / "published" / next(folder.glob("v000*.png")).name).read_bytes() == next(folder.glob("v000*.png")).read_bytes()
    assert main(["--url", app.url, "review", job_id, "--approve", "v001", "--reviewer", "dana"]) == 1
    assert "Not awaiting review (409)" in capsys.readouterr().err

    assert main(["--url", app.url, "open", job_id, "--no-browser"]) == 0
    assert capsys.readouterr().out.strip() == f"{app.url}/api/gallery/jobs/{job_id}"
    assert main(["--url", app.url, "open", "no-such-job", "--no-browser"]) == 1


def test_the_command_exits_by_how_each_job_ended_and_lists_them(app, tmp_path):
    # `unsigned-*`: signing fails (IMAGEGEN_FAULTS), so its images are held unchecked: partial.
    (tmp_path / "unsigned.yaml").write_text(yaml.safe_dump(tiny_job("unsigned-cli")), encoding="utf-8")
    blocked = tiny_job("cli-blocked")
    blocked["prompts"][0]["text"] = f"a poster with {BLOCKED_WORD} on it"
    (tmp_path / "blocked.yaml").write_text(yaml.safe_dump(blocked), encoding="utf-8")

    partial = imagegen("submit", str(tmp_path / "unsigned.yaml"), "--wait", "--interval", "0.25", "--url", app.url)
    assert partial.returncode == 3, partial.stderr
    rejected = imagegen("submit", str(tmp_path / "blocked.yaml"), "--wait", "--interval", "0.25", "--url", app.url)
    assert rejected.returncode == 4, rejected.stderr
    partial_id, rejected_id = partial.stdout.split()[0], rejected.stdout.split()[0]
    assert imagegen("status", partial_id, "--url", app.url).returncode == 3
    done = imagegen("wait", rejected_id, "--url", app.url, "--json")
    assert done.returncode == 4 and json.loads(done.stdout)["status"] == "rejected"

    listed = imagegen("list", "--all", "--json", "--url", app.url)
    assert listed.returncode == 0, listed.stderr
    assert {partial_id, rejected_id} <= {job["id"] for job in json.loads(listed.stdout)}
    only_partial = json.loads(imagegen("list", "--status", "partial", "--json", "--url", app.url).stdout)
    assert partial_id in {job["id"] for job in only_partial} and {job["status"] for job in only_partial} == {"partial"}


def test_drop_with_a_url_runs_the_file_through_the_api(app, tmp_path):
    (tmp_path / "kites-by-url.txt").write_text("a kite over the sea\n")
    # A storage connection is set too: the URL wins, and the file goes through the API.
    env = cli_env(IMAGEGEN_URL=app.url, AzureWebJobsStorage="UseDevelopmentStorage=true")
    dropped = imagegen("drop", str(tmp_path / "kites-by-url.txt"), env=env)
    assert dropped.returncode == 0, dropped.stderr
    job_id = dropped.stdout.strip()
    done = imagegen("wait", job_id, "--json", "--interval", "0.25", env=env)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["source"], job["name"]) == ("completed", "http", "kites-by-url")
