"""imagegen.records.review_book: which decisions can be applied, and what passes of them add up to."""

from __future__ import annotations

import pytest

from imagegen.core.types import JobValidationError
from imagegen.records.review_book import ReviewBook, ReviewDecision, decision_problems, parse_decision

IDS = ["v000-a", "v001-b", "v002-c", "v003-d"]


def problems(decided=(), **body):
    return {(p.path, p.rule): p.message for p in decision_problems(ReviewDecision(**body), IDS, set(decided))}


def test_every_unknown_repeated_or_decided_id_is_named():
    found = problems(decided={"v001-b"}, approve=["v000-a", "nope", "v001-b"], reject=["v000-a", "quarantined"])
    assert found == {
        ("approve[1]", "unknown_variant"): "`approve[1]` names 'nope', which is not an image of this job awaiting review",
        ("approve[2]", "already_decided"): "`approve[2]` names 'v001-b', which was already decided",
        ("reject[0]", "duplicate"): "`reject[0]` names 'v000-a', which `approve[0]` names already",
        ("reject[1]", "unknown_variant"): "`reject[1]` names 'quarantined', which is not an image of this job awaiting review",
    }


def test_a_decision_must_decide_something_or_finish():
    assert problems() == {("", "empty"): "a decision must approve or reject at least one variant, or `finish` the review"}
    assert problems(finish=True) == {}


def test_bodies_are_checked_with_field_rule_and_value():
    with pytest.raises(JobValidationError) as error:
        parse_decision({"approve": "v000", "finsh": True, "note": 3})
    rules = {(e.path, e.rule) for e in error.value.errors}
    assert rules == {("approve", "list_type"), ("finsh", "unknown_field"), ("note", "string_type")}
    assert any("got 'v000'" in e.message for e in error.value.errors)
    with pytest.raises(JobValidationError):
        parse_decision(["v000"])


def test_passes_add_up_and_the_first_decision_wins():
    book = ReviewBook(reviewable=IDS)
    assert book.apply(ReviewDecision(approve=["v000-a"], reject=["v001-b"], reviewer="ana", at="t1", note="n")) == ["v000-a"]
    # A second pass that raced the first: its repeat of v001-b is skipped, not flipped.
    assert book.apply(ReviewDecision(approve=["v001-b", "v002-c"], reviewer="bo", at="t2")) == ["v002-c"]
    assert book.decisions["v001-b"].decision == "rejected" and book.decisions["v001-b"].reviewer == "ana"
    assert book.undecided() == ["v003-d"]
    assert book.counts().model_dump() == {"approved": 2, "rejected": 1, "undecided": 1}


@pytest.mark.parametrize(("on_timeout", "approved"), [("reject", []), ("approve", ["v002-c", "v003-d"])])
def test_a_timeout_decides_what_nobody_did(on_timeout, approved):
    book = ReviewBook(reviewable=IDS)
    book.apply(ReviewDecision(approve=["v000-a"], reject=["v001-b"], reviewer="ana", at="t1"))
    assert book.time_out(on_timeout, "t9", "2h") == approved
    assert book.undecided() == []
    assert book.decisions["v003-d"].reviewer is None
    assert "no decision within 2h" in book.decisions["v003-d"].note
