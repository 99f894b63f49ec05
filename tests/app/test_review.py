"""Review before publish, end to end: devhost + Azurite + the tiny model + a webhook receiver.

A job with review waits after its images are made and checked (status awaiting_review);
people approve and reject in passes over `POST /api/jobs/{id}/review`; approved images are
copied to `published/`, and the manifest records every decision. The module's host sends
every notification (IMAGEGEN_NOTIFY_URL) to a receiver in this process, which answers
each job by its name: `down-*` with 500, `hang-*` never (until the test lets go).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.app.conftest import AppClient, launch_app, tiny_job
from tests.app.storage_invariants import storage_problems
from tests.devhost.conftest import DevhostProcess
from tests.waiting import wait_until


class Receiver:
    """Incoming webhook calls, by job id."""

    def __init__(self):
        self.calls: dict[str, list[dict]] = {}
        self.hanging = 0
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.calls.setdefault(body["job"], []).append(body)
                if body["name"].startswith("hang-"):
                    receiver.hanging += 1
                    receiver.release.wait(60)
                    return
                self.send_response(500 if body["name"].startswith("down-") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, job_id: str) -> list[str]:
        return [call["event"] for call in self.calls.get(job_id, [])]

    def close(self):
        self.release.set()
        self.server.shutdown()


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def review_env(receiver: Receiver) -> dict:
    return {"IMAGEGEN_NOTIFY_URL": receiver.url, "IMAGEGEN_NOTIFY_HOSTS": "localhost,hooks.example.com"}


@pytest.fixture(scope="module")
def reviewing(tmp_path_factory, storage_connection_string, receiver):
    host = launch_app(tmp_path_factory, storage_connection_string, **review_env(receiver))
    client = ReviewClient(host.url)
    client.host = host
    yield client
    receiver.release.set()  # a webhook call still hanging would hold the host's stop until its timeout
    host.stop()


class ReviewClient(AppClient):
    host: DevhostProcess  # for the durable management API (the job's history)

    def review(self, job_id: str, **body) -> requests.Response:
        return requests.post(f"{self.url}/api/jobs/{job_id}/review", json=body, timeout=30)

    def awaiting(self, job_id: str) -> dict:
        job = wait_until(lambda: self.job(job_id), lambda job: job["status"] in (
            "awaiting_review", "completed", "partial", "cancelled", "failed"), timeout=120, interval=0.2,
            what=f"job {job_id} to await review")
        assert job["status"] == "awaiting_review", job
        return job

    def decided(self, job_id: str, count: int) -> dict:
        return wait_until(lambda: self.manifest(job_id),
                          lambda manifest: manifest["totals"]["approved"] + manifest["totals"]["rejected"] >= count,
                          timeout=120, interval=0.2, what=f"{count} decisions in the manifest of {job_id}")

    def notifications(self, job_id: str, count: int) -> list[dict]:
        """The notifications the manifest records, once it records `count`."""
        return wait_until(lambda: self.manifest(job_id)["notifications"], lambda notes: len(notes) == count,
                          timeout=120, interval=0.2, what=f"{count} notifications in the manifest of {job_id}")


def reviewed_job(name: str, seeds: int = 4, **review) -> dict:
    return {**tiny_job(name, seeds=seeds), "review": {"timeout": "1h", **review}}


def ids(manifest: dict) -> list[str]:
    return [v["id"] for v in manifest["variants"]]


def test_passes_of_decisions_publish_the_approved_and_end_the_review(reviewing, receiver, store):
    job_id = reviewing.submit(reviewed_job("campaign"))
    waiting = reviewing.awaiting(job_id)
    assert waiting["progress"]["review"] == {"approved": 0, "rejected": 0, "undecided": 4}
    manifest = reviewing.manifest(job_id)
    assert manifest["status"] == "awaiting_review" and manifest["review"]["state"] == "awaiting"
    assert store.list("published", f"{job_id}/") == []  # nothing published before anyone said yes
    v0, v1, v2, v3 = ids(manifest)

    # First pass, by short ids.
    first = reviewing.review(job_id, approve=["v000"], reject=["v001"], note="v001 is off-brand", reviewer="ana")
    assert first.status_code == 202, first.text
    assert first.json()["approve"] == [v0]
    after_first = reviewing.decided(job_id, 2)
    assert after_first["status"] == "awaiting_review"
    assert store.list("published", f"{job_id}/") == [f"published/{job_id}/{v0}.png"]

    # Unknown, already decided and repeated ids are all named; nothing of that pass lands.
    bad = reviewing.review(job_id, approve=[v1, "v999", v2], reject=[v2], reviewer="bo")
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert {(e["path"], e["rule"]) for e in bad.json()["errors"]} == {
        ("approve[0]", "already_decided"), ("approve[1]", "unknown_variant"), ("reject[0]", "duplicate")}
    nobody = reviewing.review(job_id, approve=[v2])
    assert nobody.status_code == 400 and nobody.json()["errors"][0]["path"] == "reviewer"

    # Second pass, signed in (the platform's header wins over the field): every image decided.
    second = requests.post(f"{reviewing.url}/api/jobs/{job_id}/review", timeout=30,
                           headers={"X-MS-CLIENT-PRINCIPAL-NAME": "cleo@contoso.com"},
                           json={"approve": [v2], "reject": [v3], "reviewer": "mallory"})
    assert second.status_code == 202 and second.json()["reviewer"] == "cleo@contoso.com"
    done = reviewing.wait(job_id)
    assert done["status"] == "completed"
    assert {k: done["summary"][k] for k in ("approved", "rejected", "undecided")} == {
        "approved": 2, "rejected": 2, "undecided": 0}

    manifest = reviewing.manifest(job_id)
    assert manifest["review"]["state"] == "done" and manifest["review"]["ended_by"] == "all decided"
    decisions = {v["id"]: v["review"] for v in manifest["variants"]}
    assert decisions[v0]["reviewer"] == "ana" and decisions[v1]["note"] == "v001 is off-brand"
    assert decisions[v2]["reviewer"] == "cleo@contoso.com" and decisions[v3]["decision"] == "rejected"
    assert decisions[v1]["published"] is None and decisions[v2]["published"] == f"published/{job_id}/{v2}.png"
    assert sorted(store.list("published", f"{job_id}/")) == [f"published/{job_id}/{v0}.png", f"published/{job_id}/{v2}.png"]
    assert store.list("outputs", f"{job_id}/") == [v["blob"] for v in manifest["variants"]]  # rejected stay in outputs
    assert storage_problems(store, job_id, manifest) == []
    assert manifest["totals"]["approved"] == 2 and manifest["totals"]["undecided"] == 0

    # The review is over: another decision is a conflict.
    late = reviewing.review(job_id, approve=[v3], reviewer="ana")
    assert late.status_code == 409 and late.json()["jobStatus"] == "completed"
    # One notification when the review began, one at the end.
    wait_until(lambda: receiver.events(job_id), lambda events: events == ["awaiting_review", "ended"],
               timeout=120, what=f"two notifications of {job_id} at the receiver")
    ended = receiver.calls[job_id][1]
    assert ended["status"] == "completed" and ended["counts"]["approved"] == 2
    assert ended["links"]["gallery"].endswith(f"/api/gallery/jobs/{job_id}") and "Gallery:" in ended["text"]
    notes = reviewing.notifications(job_id, 2)
    assert {(n["event"], n["status"]) for n in notes} == {("awaiting_review", "sent"), ("ended", "sent")}


def test_finish_ends_the_review_and_leaves_the_undecided_unpublished(reviewing, store):
    job_id = reviewing.submit(reviewed_job("finished", seeds=3))
    reviewing.awaiting(job_id)
    assert reviewing.review(job_id, approve=["v002"], finish=True, reviewer="ana").status_code == 202
    done = reviewing.wait(job_id)
    assert done["status"] == "completed" and (done["summary"]["approved"], done["summary"]["undecided"]) == (1, 2)
    manifest = reviewing.manifest(job_id)
    assert manifest["review"]["ended_by"] == "finish" and manifest["totals"]["undecided"] == 2
    assert [ref.rsplit("/", 1)[1][:4] for ref in store.list("published", f"{job_id}/")] == ["v002"]
    assert storage_problems(store, job_id, manifest) == []


def test_at_the_timeout_undecided_images_get_on_timeout(reviewing, store):
    job_id = reviewing.submit(reviewed_job("timed-out", seeds=2, timeout="2s", on_timeout="approve"))
    done = reviewing.wait(job_id)
    assert done["status"] == "completed" and done["summary"]["approved"] == 2
    manifest = reviewing.manifest(job_id)
    assert manifest["review"]["ended_by"] == "timeout"
    assert {(v["review"]["decision"], v["review"]["reviewer"]) for v in manifest["variants"]} == {("approved", None)}
    assert "no decision within 2s" in manifest["variants"][0]["review"]["note"]
    assert len(store.list("published", f"{job_id}/")) == 2
    assert storage_problems(store, job_id, manifest) == []


def test_cancel_stops_the_wait_and_keeps_what_was_already_approved(reviewing, store):
    job_id = reviewing.submit(reviewed_job("cancelled-review", seeds=3))
    reviewing.awaiting(job_id)
    assert reviewing.review(job_id, approve=["v000"], reviewer="ana").status_code == 202
    reviewing.decided(job_id, 1)
    assert requests.post(f"{reviewing.url}/api/jobs/{job_id}/cancel", timeout=30).status_code == 202
    done = reviewing.wait(job_id)
    assert done["status"] == "cancelled"
    manifest = reviewing.manifest(job_id)
    assert manifest["review"] == {**manifest["review"], "state": "cancelled", "ended_by": "cancel"}
    assert manifest["totals"]["approved"] == 1 and manifest["totals"]["undecided"] == 2
    assert "cancelled by user while awaiting review" in manifest["reasons"]
    assert len(store.list("published", f"{job_id}/")) == 1
    assert storage_problems(store, job_id, manifest) == []


def test_a_job_without_review_publishes_nothing_new_and_is_not_reviewable(reviewing, store):
    job_id = reviewing.submit(tiny_job("no-review"))
    assert reviewing.wait(job_id)["status"] == "completed"
    assert store.list("published", f"{job_id}/") == []
    assert reviewing.manifest(job_id)["review"] is None
    assert reviewing.review(job_id, approve=["v000"], reviewer="ana").status_code == 409
    assert reviewing.review("no-such-job", approve=["v000"], reviewer="ana").status_code == 404


def test_a_webhook_that_fails_or_hangs_does_not_hold_up_the_job(reviewing, receiver):
    down = reviewing.submit(reviewed_job("down-hook", seeds=2))
    reviewing.awaiting(down)  # the failing awaiting_review call is not waited for
    assert reviewing.review(down, approve=["v000", "v001"], reviewer="ana").status_code == 202
    assert reviewing.wait(down)["status"] == "completed"
    notes = reviewing.notifications(down, 2)
    assert {(n["event"], n["status"], n["attempts"], n["http_status"]) for n in notes} == {
        ("awaiting_review", "failed", 3, 500), ("ended", "failed", 3, 500)}

    hung = reviewing.submit(tiny_job("hang-hook"))
    done = reviewing.wait(hung)
    assert done["status"] == "completed" and done["summary"]["ok"] == 2
    # The job reports its end before it makes the "ended" call (the custom status carries it
    # first), so the call may still be on its way: wait for it, then let the receiver hold it.
    wait_until(lambda: receiver.events(hung), lambda events: events == ["ended"], timeout=60,
               what=f"the ended notification of {hung} at the receiver")
    assert receiver.hanging >= 1


@pytest.mark.parametrize(("url", "rule"), [
    ("https://localhost/hook", "notify_address"),  # listed, but a loopback address
    ("https://elsewhere.example.org/hook", "notify_hosts"),
    ("http://hooks.example.com/hook", "https_only"),
])
def test_a_job_naming_a_webhook_the_deployment_does_not_allow_is_refused_at_submit(reviewing, url, rule):
    response = reviewing.post_job({**tiny_job("hooked"), "notify": {"url": url}})
    assert response.status_code == 400
    assert [(e["path"], e["rule"]) for e in response.json()["errors"]] == [("notify.url", rule)]


def test_a_job_still_awaits_review_after_a_host_restart_and_a_later_decision_lands(
        tmp_path_factory, storage_connection_string, store, receiver):
    first = launch_app(tmp_path_factory, storage_connection_string, **review_env(receiver))
    workdir, task_hub = first.log_path.parent, first.store
    try:
        job_id = ReviewClient(first.url).submit(reviewed_job("restarted", seeds=2))
        ReviewClient(first.url).awaiting(job_id)
    finally:
        first.stop()
    second = launch_app(tmp_path_factory, storage_connection_string, workdir=workdir, store=task_hub,
                        **review_env(receiver))
    try:
        app = ReviewClient(second.url)
        assert app.job(job_id)["status"] == "awaiting_review"
        assert app.review(job_id, approve=["v000"], reject=["v001"], reviewer="ana").status_code == 202
        done = app.wait(job_id)
        assert done["status"] == "completed" and done["summary"]["approved"] == 1
        assert len(store.list("published", f"{job_id}/")) == 1
        assert storage_problems(store, job_id, app.manifest(job_id)) == []
    finally:
        second.stop()


def test_passes_back_to_back_and_at_once_each_land_once_and_the_history_stays_bounded(reviewing, store):
    job_id = reviewing.submit(reviewed_job("racing", seeds=8))
    reviewing.awaiting(job_id)
    v = ids(reviewing.manifest(job_id))
    # Back to back: the later passes come while the job reads and publishes the first (it
    # answered 409 "running" then, and the SDK lost or replayed passes that came unawaited).
    answers = [reviewing.review(job_id, approve=[v[0]], reviewer="ana"),
               reviewing.review(job_id, reject=[v[1]], reviewer="bo"),
               reviewing.review(job_id, approve=[v[2]], reviewer="cleo")]
    # At once: five reviewers; two of them decide the same image.
    bodies = [{"reject": [v[3]], "reviewer": "dan"}, {"approve": [v[4]], "reviewer": "eve"},
              {"approve": [v[5]], "reviewer": "fay"}, {"approve": [v[6]], "reviewer": "gus"},
              {"reject": [v[6], v[7]], "reviewer": "hal"}]
    with ThreadPoolExecutor(len(bodies)) as pool:
        at_once = list(pool.map(lambda body: reviewing.review(job_id, **body), bodies))
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]
    # The route turns away a pass that names an image a recorded pass decided (400); two
    # passes that both got past it are both recorded, and the first recorded decides.
    assert all(a.status_code in (202, 400) for a in at_once) and sum(a.status_code == 202 for a in at_once) >= 4
    if not all(a.status_code == 202 for a in at_once):
        reviewing.review(job_id, reject=[v[7]], reviewer="hal")  # hal's pass was refused whole: decide v7 alone

    reviewing.wait(job_id)
    manifest = reviewing.manifest(job_id)
    decided = {variant["id"]: (variant["review"]["decision"], variant["review"]["reviewer"])
               for variant in manifest["variants"]}
    assert decided[v[0]] == ("approved", "ana") and decided[v[1]] == ("rejected", "bo")
    assert decided[v[2]] == ("approved", "cleo") and decided[v[3]] == ("rejected", "dan")
    assert decided[v[4]] == ("approved", "eve") and decided[v[5]] == ("approved", "fay")
    ledger = json.loads(store.get(f"manifests/{job_id}.review-passes.json"))
    first_on_v6 = next(p for p in ledger if v[6] in p["approve"] + p["reject"])
    assert decided[v[6]] == ("approved" if v[6] in first_on_v6["approve"] else "rejected", first_on_v6["reviewer"])
    assert manifest["review"]["ended_by"] == "all decided" and manifest["totals"]["undecided"] == 0
    # Every approved image published once; the history grows with the passes, not without end.
    assert sorted(store.list("published", f"{job_id}/")) == sorted(
        f"published/{job_id}/{vid}.png" for vid, (decision, _) in decided.items() if decision == "approved")
    history = reviewing.host.status(job_id, showHistory="true").json()["historyEvents"]
    assert len(history) < 40 * len(ledger), len(history)
