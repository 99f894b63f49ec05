"""imagegen.storage.review_passes against a real Azurite: the review's ledger keeps every pass."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from imagegen.records.review_book import ReviewDecision
from imagegen.storage.review_passes import append_review_pass, read_review_passes


def a_pass(reviewer: str, *approve: str) -> ReviewDecision:
    return ReviewDecision(approve=list(approve), reviewer=reviewer, at="2026-12-07T10:00:00+00:00")


def test_passes_read_back_in_the_order_recorded_from_any_point(store, job_id):
    assert read_review_passes(store, job_id) == []  # no ledger yet: no passes
    assert [append_review_pass(store, job_id, a_pass(name, "v000")) for name in ("ana", "bo", "cleo")] == [0, 1, 2]
    assert [p.reviewer for p in read_review_passes(store, job_id)] == ["ana", "bo", "cleo"]
    assert [p.reviewer for p in read_review_passes(store, job_id, after=2)] == ["cleo"]
    assert read_review_passes(store, job_id, after=3) == []


def test_reviewers_at_once_all_land_each_once(store, job_id):
    names = [f"reviewer-{n}" for n in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:  # the first write creates the ledger: they race for it too
        places = list(pool.map(lambda name: append_review_pass(store, job_id, a_pass(name, f"v-{name}")), names))

    recorded = read_review_passes(store, job_id)
    assert sorted(places) == list(range(len(names)))
    assert sorted(p.reviewer for p in recorded) == sorted(names)
    assert all(recorded[place].reviewer == name for place, name in zip(places, names))
