"""Review before publish: the decisions people send and what they do to a job.

A job with review waits, after every image is made and checked, for `review` events: each
names variants to approve and to reject, with the reviewer and an optional note, and may
`finish` the review. Only `ok` variants (made and checked safe) can be decided, each once.
Approved images are copied to `published/`; rejected ones stay in `outputs/`.

Pure code (pydantic only): the orchestrator folds decisions in while it replays, and the
HTTP route checks a decision with the same rules before it raises the event.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imagegen.core.types import FieldError, JobValidationError

MAX_NOTE = 2000
MAX_REVIEWER = 200
Decision = Literal["approved", "rejected"]


class ReviewDecision(BaseModel):
    """One pass of a review: the body of `POST /api/jobs/{id}/review`, and the `review`
    event's payload (with `reviewer` and `at` filled in by the route)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    approve: list[str] = Field(default_factory=list, description="Variant ids to approve (and publish)")
    reject: list[str] = Field(default_factory=list, description="Variant ids to reject")
    note: str = Field("", max_length=MAX_NOTE, description="Why, for the record")
    finish: bool = Field(False, description="End the review now; undecided variants stay unpublished")
    reviewer: str | None = Field(None, max_length=MAX_REVIEWER,
                                 description="Who decides; the signed-in user when the platform says so")
    at: str | None = Field(None, description="When (UTC, ISO 8601); set by the route")

    @field_validator("approve", "reject")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or len(value) > 128:
                raise ValueError(f"variant ids are 1 to 128 characters, got {value[:40]!r}")
        return values


def parse_decision(body: object) -> ReviewDecision:
    """A decision from a request body; errors name field, rule and value."""
    if not isinstance(body, dict):
        raise JobValidationError([FieldError(path="", rule="type", message=(
            "the body must be a JSON object like {\"approve\": [\"v000\"], \"reject\": [], \"note\": \"\"}"))])
    try:
        return ReviewDecision.model_validate(body)
    except ValidationError as error:
        errors = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in item["loc"])
            path = path.replace(".[", "[")
            rule = {"extra_forbidden": "unknown_field", "missing": "required"}.get(item["type"], item["type"])
            message = item["msg"].removeprefix("Value error, ")
            shown = repr(item.get("input"))[:60]
            errors.append(FieldError(path=path, rule=rule, message=f"`{path}`: {message}, got {shown}"))
        raise JobValidationError(errors) from None


def full_ids(decision: ReviewDecision, reviewable: list[str]) -> ReviewDecision:
    """The decision with short ids spelled out: a variant may be named by its whole id or by
    its position, the part before the first `-` (`v003` for `v003-p0-s1-512x512-g7.5-seed12`).
    Ids that match nothing are left as they are, for `decision_problems` to name."""
    by_position = {variant_id.split("-", 1)[0]: variant_id for variant_id in reviewable}
    known = set(reviewable)

    def full(variant_id: str) -> str:
        return variant_id if variant_id in known else by_position.get(variant_id, variant_id)

    return decision.model_copy(update={"approve": [full(v) for v in decision.approve],
                                       "reject": [full(v) for v in decision.reject]})


def decision_problems(decision: ReviewDecision, reviewable: list[str], decided: set[str]) -> list[FieldError]:
    """Every id in `decision` that cannot be decided: unknown (not an `ok` variant of the
    job), already decided, or named twice. [] when the decision can be applied."""
    problems: list[FieldError] = []
    known = set(reviewable)
    seen: dict[str, str] = {}
    for field in ("approve", "reject"):
        for index, variant_id in enumerate(getattr(decision, field)):
            path = f"{field}[{index}]"
            if variant_id not in known:
                problems.append(FieldError(path=path, rule="unknown_variant", message=(
                    f"`{path}` names {variant_id!r}, which is not an image of this job awaiting review")))
            elif variant_id in decided:
                problems.append(FieldError(path=path, rule="already_decided", message=(
                    f"`{path}` names {variant_id!r}, which was already decided")))
            elif variant_id in seen:
                problems.append(FieldError(path=path, rule="duplicate", message=(
                    f"`{path}` names {variant_id!r}, which `{seen[variant_id]}` names already")))
            seen.setdefault(variant_id, path)
    if not decision.approve and not decision.reject and not decision.finish:
        problems.append(FieldError(path="", rule="empty", message=(
            "a decision must approve or reject at least one variant, or `finish` the review")))
    return problems


class ReviewBook(BaseModel):
    """The decisions so far, by variant id; what the orchestrator keeps while it waits."""

    reviewable: list[str]  # ids of the job's ok variants, in job order
    decisions: dict[str, dict[str, Any]] = Field(default_factory=dict)  # id -> VariantReview fields

    def undecided(self) -> list[str]:
        return [variant_id for variant_id in self.reviewable if variant_id not in self.decisions]

    def apply(self, decision: ReviewDecision) -> list[str]:
        """Record a pass; returns the ids it approved. Ids that cannot be decided (a race
        with another pass the route could not see yet) are skipped: the first decision wins."""
        approved = []
        known, done = set(self.reviewable), set(self.decisions)
        for field, verdict in (("approve", "approved"), ("reject", "rejected")):
            for variant_id in getattr(decision, field):
                if variant_id not in known or variant_id in done:
                    continue
                done.add(variant_id)
                self.decisions[variant_id] = {"decision": verdict, "reviewer": decision.reviewer,
                                              "at": decision.at, "note": decision.note, "published": None}
                if verdict == "approved":
                    approved.append(variant_id)
        return approved

    def time_out(self, on_timeout: Literal["reject", "approve"], at: str, timeout: str) -> list[str]:
        """Give every undecided variant `on_timeout`; returns the ids it approved."""
        verdict = "approved" if on_timeout == "approve" else "rejected"
        ids = self.undecided()
        for variant_id in ids:
            self.decisions[variant_id] = {"decision": verdict, "reviewer": None, "at": at,
                                          "note": f"no decision within {timeout}: {on_timeout} (on_timeout)",
                                          "published": None}
        return ids if verdict == "approved" else []

    def mark_published(self, published: dict[str, str]) -> None:
        for variant_id, ref in published.items():
            self.decisions[variant_id]["published"] = ref

    def counts(self) -> dict[str, int]:
        approved = sum(1 for d in self.decisions.values() if d["decision"] == "approved")
        return {"approved": approved, "rejected": len(self.decisions) - approved, "undecided": len(self.undecided())}


def now_utc() -> str:
    """For the HTTP route (not the orchestrator): when a reviewer decided."""
    return datetime.now(timezone.utc).isoformat()
