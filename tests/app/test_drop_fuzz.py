"""Fuzz of blob drops: random names and bytes, each file must end as a job or moved aside.

Hypothesis draws batches of files: names with odd characters (empty segments, a tab,
spaces, `%` and what an encoding puts after one, quotes, non-ASCII) and suffixes a job
file may or may not have; contents that are random bytes, broken YAML, small valid jobs,
or JSON and YAML nested 31 to 5,000 levels deep; and in each batch a file the app fails
on every time it reads it (IMAGEGEN_FAULTS `fail-drop`), which the blob trigger's poison
queue must bring to `prompts-rejected/`. Every file must end either as a job (listed with
the file as its origin) or in `prompts-rejected/` with its reasons in `NAME.error.json`,
and never stay in `prompts/`. Bounded: 3 batches of 8 files.

Not drawn: names the storage service itself rewrites or cannot list (`.`/`..` segments,
a leading `/`, a trailing `.`, backslashes, control characters but the tab); those are
the host's part (its blob listing), not the app's.
"""

from __future__ import annotations

import json
import uuid

import yaml
from azure.storage.blob import BlobServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegen.core.blob_names import clean_name
from tests.app.conftest import POISON_DROP, tiny_job
from tests.waiting import wait_until

ODD = st.sampled_from(["", " ", "\t", "%", "%2F", "%25", "%2E", "'", '"', "#", "?", "é", "名", "😀", "-", "_"])
WORD = st.text(alphabet="abcxyz019", min_size=1, max_size=6)
SUFFIX = st.sampled_from([".yaml", ".yml", ".json", ".txt", ".YAML", ".bin", ".yaml.bak", ".error.json", ""])
FIGURES = {"files": 0, "job": 0, "rejected": 0, "deep": 0, "poisoned": 0}  # deep, poisoned: rejected so


@st.composite
def deep_document(draw) -> bytes:
    """JSON or YAML nested around the limit (32) or far past it, brackets in strings too."""
    depth = draw(st.sampled_from([33, 600, 5000, 31, 32]))
    shape = draw(st.sampled_from(["json-lists", "json-objects", "yaml-flow", "yaml-block", "unclosed"]))
    if shape == "json-lists":
        return b"[" * depth + b'"]]{"' + b"]" * depth
    if shape == "json-objects":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if shape == "yaml-flow":
        return b"{a: " * depth + b"1" + b"}" * depth
    if shape == "yaml-block":
        return b"prompts:\n" + b"- " * depth + b"x\n"
    return b'{"name": "deep", "prompts": ' + b"[" * depth


CONTENTS = {
    "bytes": st.binary(max_size=64),
    "broken": st.sampled_from([b"name: [unclosed", b"{\"name\": 1}", b"prompts: 3\n", b"\xff\xfe\x00"]),
    "job": st.just(yaml.safe_dump(tiny_job("fuzzed", seeds=1)).encode()),
    "deep": deep_document(),
}
# What each batch's eight files hold, so every batch has some of each: the last fails every
# time the app reads it (IMAGEGEN_FAULTS `fail-drop`), whatever it holds: the poison queue's way.
BATCH = ("bytes", "broken", "job", "deep", "deep", "deep", "any", "poisoned")


@st.composite
def dropped_file(draw, kind: str) -> tuple[str, bytes]:
    parts = draw(st.lists(st.tuples(WORD, ODD), min_size=1, max_size=3))
    separator = draw(st.sampled_from(["", "/", "//"]))
    stem = separator.join(word + odd for word, odd in parts).strip("/") or "x"
    folder = POISON_DROP if kind == "poisoned" else "fuzz-"
    name = f"{folder}{uuid.uuid4().hex[:6]}/{stem}x{draw(SUFFIX)}"
    if kind in ("any", "poisoned"):
        kind = draw(st.sampled_from(sorted(CONTENTS)))
    return name, draw(CONTENTS[kind])


def ended(app, store, name: str, jobs: list[dict]) -> str | None:
    if any(job["origin"] == f"prompts/{name}" for job in jobs):
        return "job"
    report = f"prompts-rejected/{clean_name(name)}.error.json"
    if store.exists(report):
        errors = json.loads(store.get(report))["errors"]
        assert errors and all(error["message"] for error in errors), errors
        return "rejected"
    return None


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=st.tuples(*(dropped_file(kind) for kind in BATCH)))
def test_every_dropped_file_ends_as_a_job_or_moved_aside_with_reasons(app, store, storage_connection_string, files):
    prompts = BlobServiceClient.from_connection_string(storage_connection_string).get_container_client("prompts")
    for name, content in files:
        prompts.upload_blob(name, content, overwrite=True)

    outcomes: dict[str, str | None] = {name: None for name, _ in files}

    def still_open() -> list[str]:
        jobs = app.jobs()
        for name in [n for n, outcome in outcomes.items() if outcome is None]:
            outcomes[name] = ended(app, store, name, jobs)
        return [n for n, outcome in outcomes.items() if outcome is None]

    wait_until(still_open, lambda names: not names, timeout=30, interval=0.5,
               what="every dropped file to end as a job or be moved aside (the value: those still open)")
    for name, _ in files:
        leftover = [b for b in prompts.list_blob_names(name_starts_with=name.split("/")[0]) if b == name]
        assert outcomes[name] == "job" or not leftover, f"{name!r} rejected but still in prompts/"
    FIGURES["files"] += len(files)
    for outcome in outcomes.values():
        FIGURES[outcome] += 1
    for name, _ in files:
        if outcomes[name] != "rejected":
            continue
        rules = [error["rule"] for error in json.loads(store.get(f"prompts-rejected/{clean_name(name)}.error.json"))["errors"]]
        if name.startswith(POISON_DROP):   # never run: moved aside with the poison report
            assert rules == ["poison"], (name, rules)
        FIGURES["deep"] += "max_depth" in rules
        FIGURES["poisoned"] += "poison" in rules
    print(f"drop fuzz so far: {FIGURES}")
