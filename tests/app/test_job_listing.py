"""Past the management API's first page: hundreds of jobs listed, filtered and purged (issue 23).

The task hub is seeded before the host starts (tests/app/seeded_task_hub.py): 300 jobs that
ended over the last nine days, each with one to three batches (`render_batch` instances),
jobs that ended long ago, old jobs still running: about 940 instances, in a second, with no
GPU work. Three more jobs are submitted through the API as a user would (a blocked prompt ends
one in a moment). Everything is read through the app's HTTP API and the management API; the
retention timer runs every two seconds here.
"""

from __future__ import annotations

import html
import random
import re
import time
from datetime import datetime, timezone

import pytest
import requests

from imagegen.core import blob_names
from tests.app.conftest import BLOCKED_WORD, AppClient, launch_app, tiny_job
from tests.app.seeded_task_hub import SeededJob, seed_jobs, summary_status
from tests.waiting import wait_until

DAY = 86400.0
WEBHOOK = "/runtime/webhooks/durabletask"


def seeded_jobs(now: float) -> dict[str, list[SeededJob]]:
    """The hub's jobs by what retention must do with them: `recent`, `kept` (old but not
    ended before the cutoff) and `purged` (ended more than 30 days ago)."""
    rng = random.Random(23)
    recent: list[SeededJob] = []
    for index in range(300):
        name = ("poster", "banner", "sneaker")[index % 3] + f"-{index:03d}"
        runtime = "Failed" if index % 10 == 0 else "Terminated" if index % 17 == 0 else "Completed"
        # Every 25th job was made in the same instant as the one before: ties, broken by id.
        created = recent[-1].created if index % 25 == 24 else now - 120 - rng.uniform(0, 9 * DAY)
        job_id = f"{name}-{rng.getrandbits(40):010x}"
        recent.append(SeededJob(job_id, name, rng.choice(("http", "blob", "schedule")), runtime,
                                summary_status(runtime, ("completed", "partial", "rejected")[index % 3]),
                                created, created + rng.uniform(5, 600),
                                [f"{job_id}:b{batch}" for batch in range(1 + index % 3)]))
    purged = [SeededJob(f"old-{index}-{rng.getrandbits(40):010x}", f"old-{index}", "http", runtime,
                        summary_status(runtime, "completed"), created, created + 60, [])
              for index, (runtime, created) in enumerate(
                  (("Completed", "Failed", "Terminated")[index % 3], now - (35 + 2.5 * index) * DAY) for index in range(10))]
    for job in purged:
        job.batches = [f"{job.id}:b0", f"{job.id}:b1"]
    kept = [
        # Created 40 days ago, ended two days ago (a long review): ended after the cutoff.
        SeededJob("reviewed-long-0000000001", "reviewed-long", "http", "Completed", "completed",
                  now - 40 * DAY, now - 2 * DAY, ["reviewed-long-0000000001:b0"]),
        # Still running after 40 days: never purged, nor its ended batch.
        SeededJob("still-running-0000000001", "still-running", "schedule", "Running", "running",
                  now - 40 * DAY, now - 40 * DAY + 1, ["still-running-0000000001:b0"]),
        SeededJob("still-running-0000000002", "still-running", "blob", "Running", "running",
                  now - 41 * DAY, now - 41 * DAY + 1, []),
    ]
    return {"recent": recent, "kept": kept, "purged": purged}


@pytest.fixture(scope="module")
def hub(tmp_path_factory, storage_connection_string, store):
    now = time.time()
    jobs = seeded_jobs(now)
    workdir = tmp_path_factory.mktemp("listing")
    seed_jobs(workdir / "taskhub.sqlite", [job for group in jobs.values() for job in group])
    for job in jobs["purged"]:  # what each job left behind, which retention never touches
        store.put(blob_names.manifest_ref(job.id), b'{"job_id": "%s"}' % job.id.encode(), "application/json")
        store.put(blob_names.output_ref(job.id, "v000", "png"), b"\x89PNG seeded", "image/png")
    host = launch_app(tmp_path_factory, storage_connection_string, workdir=workdir,
                      store=workdir / "taskhub.sqlite", IMAGEGEN_RETENTION_TICK="*/2 * * * * *")
    yield host, jobs
    host.stop()


def instance_status(host, instance_id: str) -> int:
    return requests.get(f"{host.url}{WEBHOOK}/instances/{instance_id}", timeout=30).status_code


@pytest.fixture(scope="module")
def purged_hub(hub):
    """The hub once the retention timer has purged what it must (it runs every two seconds)."""
    host, jobs = hub
    gone = [job.id for job in jobs["purged"]]
    wait_until(lambda: [i for i in gone if instance_status(host, i) != 404], lambda left: not left, timeout=60,
               interval=0.5, what="retention to purge the jobs that ended 35 to 58 days ago", context=lambda: host.log()[-3000:])
    return host, jobs


def read_pages(url: str, **params) -> tuple[list[dict], int]:
    """Every page of `GET /api/jobs` with `params`: the jobs in the order shown, and how many pages."""
    jobs, token, pages = [], None, 0
    while True:
        response = requests.get(f"{url}/api/jobs", params={**params, **({"continuationToken": token} if token else {})},
                                timeout=60)
        assert response.status_code == 200, response.text
        page = response.json()
        jobs += page["jobs"]
        pages += 1
        token = page["continuationToken"]
        if token is None:
            return jobs, pages
        assert pages < 200, "the list never ends"


def newest_first(jobs: list[SeededJob]) -> list[str]:
    return [job.id for job in sorted(jobs, key=lambda job: (job.created, job.id), reverse=True)]


def test_retention_purges_jobs_that_ended_long_ago_with_their_batches_and_nothing_else(purged_hub, store):
    host, jobs = purged_hub
    for job in jobs["purged"]:
        assert [instance_status(host, i) for i in (job.id, *job.batches)] == [404, 404, 404], job.id
        # The record stays: the manifest and the images are not the history.
        assert store.exists(blob_names.manifest_ref(job.id))
        assert store.exists(blob_names.output_ref(job.id, "v000", "png"))
    for job in jobs["kept"] + jobs["recent"][:40]:
        expected = 202 if job.runtime == "Running" else 200
        assert instance_status(host, job.id) == expected, job.id
        assert all(instance_status(host, batch) == 200 for batch in job.batches), job.id


def test_every_job_is_listed_once_newest_first_page_by_page(purged_hub):
    host, jobs = purged_hub
    app = AppClient(host.url)
    blocked = tiny_job("made-now")
    blocked["prompts"][0]["text"] = f"a {BLOCKED_WORD} bicycle"
    made_now = [app.submit(blocked) for _ in range(3)]
    made = {job_id: app.wait(job_id) for job_id in made_now}
    assert {job["status"] for job in made.values()} == {"rejected"}
    hub_size = len(requests.get(f"{host.url}{WEBHOOK}/instances/", params={"top": 1000}, timeout=60).json())
    assert hub_size > 250, hub_size  # what the management API holds: jobs and their batches

    started = time.monotonic()
    listed, pages = read_pages(host.url, top=37)
    seconds = time.monotonic() - started
    ids = [job["id"] for job in listed]
    made_order = sorted(made_now, key=lambda i: (made[i]["createdTime"], i), reverse=True)
    assert ids == made_order + newest_first(jobs["recent"] + jobs["kept"])
    assert len(ids) == len(set(ids)) == 306 and pages == 9
    print(f"\nlisting: {hub_size} instances, {len(ids)} jobs in {pages} pages of 37 in {seconds:.2f} s")
    by_200, big_pages = read_pages(host.url, top=200)
    assert [job["id"] for job in by_200] == ids and big_pages == 2


def test_filters_page_through_their_jobs_alone(purged_hub):
    host, jobs = purged_hub
    seeded = jobs["recent"] + jobs["kept"]
    since = datetime.fromtimestamp(time.time() - 3 * DAY, timezone.utc)
    cases = [
        ({"status": "failed"}, lambda job: job.status == "failed"),
        ({"status": "partial"}, lambda job: job.status == "partial"),
        ({"status": "running"}, lambda job: job.status == "running"),
        ({"source": "blob", "namePrefix": "banner"}, lambda job: job.source == "blob" and job.name.startswith("banner")),
        ({"createdAfter": since.isoformat(), "status": "completed"},
         lambda job: job.created >= since.timestamp() and job.status == "completed"),
    ]
    for params, keep in cases:
        listed, _ = read_pages(host.url, top=25, **params)
        assert [job["id"] for job in listed] == newest_first([job for job in seeded if keep(job)]), params
    assert [job["name"] for job in read_pages(host.url, namePrefix="still-")[0]] == ["still-running"] * 2


def test_a_bad_parameter_is_a_400_naming_it(purged_hub):
    host, _ = purged_hub
    response = requests.get(f"{host.url}/api/jobs", params={"continuationToken": "page-2"}, timeout=30)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["path"] == "continuationToken" and "'page-2'" in error["message"]


def test_the_gallery_shows_the_newest_fifty_and_links_to_the_next(purged_hub):
    host, jobs = purged_hub
    everything = [job["id"] for job in read_pages(host.url, top=200)[0]]

    def shown(page: str) -> list[str]:
        return re.findall(r'<tr class="job" data-job="([^"]+)"', page)

    first = requests.get(f"{host.url}/api/gallery", timeout=60)
    assert first.status_code == 200 and shown(first.text) == everything[:50]
    older = html.unescape(re.search(r'class="older" rel="next" href="([^"]+)"', first.text)[1])
    second = requests.get(host.url + older, timeout=60).text
    assert shown(second) == everything[50:100] and 'class="newest"' in second
    failed = requests.get(f"{host.url}/api/gallery", params={"status": "failed"}, timeout=60).text
    assert shown(failed) == newest_first([job for job in jobs["recent"] if job.status == "failed"])[:50]
