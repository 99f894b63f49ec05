"""`make demo`: run the example jobs end to end on this machine, no cloud.

Starts devhost (which starts Azurite) with the tiny offline model and the local safety
checks, submits the txt2img fan-out and the img2img job from `examples/`, shows their
progress, downloads the results into `out/`, checks their Content Credentials (C2PA)
against the development CA, prints where to look, and stops everything.
The fan-out asks for review: the demo prints its gallery URL, approves some images and
rejects one through the CLI (`imagegen review`), and downloads both its outputs and the
approved images copied to the `published` container.

The tiny model has random weights: its images are noise. The pipeline around it —
moderation, fan-out, storage, manifest — is the real one. Set IMAGEGEN_MODEL to a model
folder or hub id (on a machine that can reach it) for real pictures.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from imagegen.cli.api import Api, ApiError
from imagegen.cli.downloads import download
from imagegen.cli.following import follow_with_progress
from imagegen.cli.job_files import job_body
from imagegen.cli.job_lines import summary_line
from imagegen.cli.main import gallery_url
from imagegen.cli.main import main as imagegen

ROOT = Path(__file__).resolve().parent.parent
JOBS = [ROOT / "examples" / "spring-campaign.yaml", ROOT / "examples" / "sneaker-restyle.yaml"]
OUT = ROOT / "out"


def start_devhost() -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,
        "AzureWebJobsStorage": os.environ.get("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
        "IMAGEGEN_MODEL": os.environ.get("IMAGEGEN_MODEL", "tiny"),
        "SAFETY_PROVIDER": os.environ.get("SAFETY_PROVIDER", "local"),
        "IMAGEGEN_SCHEDULE_TICK": os.environ.get("IMAGEGEN_SCHEDULE_TICK", "0 * * * * *"),
        "IMAGEGEN_RETENTION_TICK": os.environ.get("IMAGEGEN_RETENTION_TICK", "0 30 3 * * *"),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(ROOT), "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    log = open(ROOT / ".devhost" / "demo-host.log", "w") if (ROOT / ".devhost").is_dir() else None
    deadline = time.monotonic() + 180
    for line in process.stdout:  # type: ignore[union-attr]
        if log:
            log.write(line)
        ready = re.search(r"devhost ready on (\S+)", line)
        if ready:
            threading.Thread(target=drain, args=(process, log), daemon=True).start()
            return process, ready.group(1)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise SystemExit(f"devhost did not start; see {ROOT / '.devhost' / 'demo-host.log'}")


def drain(process: subprocess.Popen, log) -> None:
    """Keep reading the host's output so it never blocks on a full pipe."""
    for line in process.stdout:  # type: ignore[union-attr]
        if log:
            log.write(line)
            log.flush()


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def review(api: Api, job_id: str) -> dict:
    """What a reviewer does, through the CLI: approve three images, reject one, finish."""
    print(f"\n{job_id} awaits review. Open the gallery to look: {gallery_url(api.url, job_id)}", flush=True)
    print(f"imagegen review {job_id} --approve v000,v002,v005 --reject v001 --note 'demo' --finish", flush=True)
    code = imagegen(["--url", api.url, "review", job_id, "--approve", "v000,v002,v005", "--reject", "v001",
                     "--note", "approved in the demo", "--reviewer", "demo", "--finish"])
    if code != 0:
        raise ApiError(0, f"imagegen review {job_id} failed")
    return follow_with_progress(api, job_id)


def main() -> int:
    (ROOT / ".devhost").mkdir(exist_ok=True)
    print("Starting devhost (the local Functions host) and Azurite ...", flush=True)
    process, url = start_devhost()
    api = Api(url)
    results = []
    try:
        print(f"devhost is up at {url}\n", flush=True)
        # The first health call imports diffusers: it takes a while on a busy machine.
        print(requests.get(f"{url}/api/health", timeout=180).json().get("note", ""), flush=True)
        for path in JOBS:
            job_id = api.submit(*job_body(path))["jobId"]
            print(f"submitted {path.relative_to(ROOT)} as job {job_id}", flush=True)
            job = follow_with_progress(api, job_id)
            if job["status"] == "awaiting_review":
                job = review(api, job_id)
            sheet = download(api, job_id, OUT)
            results.append((summary_line(job), sheet))
    except ApiError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        stop(process)
    print("\nDone. Results:")
    for line, sheet in results:
        print(f"  {line}\n    open {sheet.relative_to(ROOT)}  (images + manifest.json beside it)")
        if (sheet.parent / "published").is_dir():
            print(f"    approved images, from the published container: {(sheet.parent / 'published').relative_to(ROOT)}/")
    return check_credentials([sheet.parent for _, sheet in results])


def check_credentials(folders: list[Path]) -> int:
    """Every downloaded image carries valid Content Credentials from the development CA."""
    from imagegen.checks import provenance

    if os.environ.get("C2PA_SIGNER", "local") != "local":
        print(f"\nC2PA_SIGNER={os.environ['C2PA_SIGNER']}: images are not checked against the development CA.")
        return 0
    trust = provenance.local_ca_path(ROOT / ".devhost" / "c2pa")
    print("\nContent Credentials (C2PA), signed with the development CA (untrusted outside this machine):")
    failed = 0
    for folder in folders:
        images = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg", ".webp"))
        results = [provenance.verify(p.read_bytes(), p.suffix.lstrip("."), trust.read_text()) for p in images]
        good = sum(1 for r in results if r.valid and r.trusted
                   and r.digital_source_type == provenance.TRAINED_ALGORITHMIC_MEDIA)
        failed += len(images) - good
        print(f"  {good} of {len(images)} images in {folder.relative_to(ROOT)} valid and AI-generated; check with\n"
              f"    .venv/bin/imagegen verify {folder.relative_to(ROOT)}/*{images[0].suffix if images else '.png'}"
              f" --trust {trust.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
