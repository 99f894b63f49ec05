"""Fuzz of blob drops: random names and bytes, each file must end as a job or moved aside.

Hypothesis draws batches of files: names with odd characters (empty segments, a tab,
spaces, `%`, quotes, non-ASCII) and suffixes a job file may or may not have; contents
that are random bytes, broken YAML or small valid jobs. Every file must end either as a
job (listed with the file as its origin) or in `prompts-rejected/` with its reasons in
`NAME.error.json`, and never stay in `prompts/`. Bounded: 3 batches of 8 files.

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
from tests.app.conftest import tiny_job
from tests.waiting import wait_until

ODD = st.sampled_from(["", " ", "\t", "%", "%2F", "'", '"', "#", "?", "é", "名", "😀", "-", "_"])
WORD = st.text(alphabet="abcxyz019", min_size=1, max_size=6)
SUFFIX = st.sampled_from([".yaml", ".yml", ".json", ".txt", ".YAML", ".bin", ".yaml.bak", ""])
FIGURES = {"files": 0, "job": 0, "rejected": 0}


@st.composite
def dropped_file(draw) -> tuple[str, bytes]:
    parts = draw(st.lists(st.tuples(WORD, ODD), min_size=1, max_size=3))
    separator = draw(st.sampled_from(["", "/", "//"]))
    stem = separator.join(word + odd for word, odd in parts).strip("/") or "x"
    name = f"fuzz-{uuid.uuid4().hex[:6]}/{stem}x{draw(SUFFIX)}"
    content = draw(st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"name: [unclosed", b"{\"name\": 1}", b"prompts: 3\n", b"\xff\xfe\x00"]),
        st.just(yaml.safe_dump(tiny_job("fuzzed", seeds=1)).encode()),
    ))
    return name, content


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
@given(files=st.lists(dropped_file(), min_size=8, max_size=8))
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
    print(f"drop fuzz so far: {FIGURES}")
