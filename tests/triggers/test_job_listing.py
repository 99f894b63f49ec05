"""Jobs newest first across pages, whatever order the backend lists in (triggers/job_listing.py).

A stand-in task hub answers list queries the way the real management API does where it
matters here: filters on the exact created time it keeps, shows that time cut to whole
seconds (as the extension does; devhost shows microseconds), lists in instance-id order
(Azure Storage's), and in short pages (the API may answer fewer than `top`).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegen.core.types import JobValidationError
from triggers.job_listing import (
    MOST_TOP,
    Cursor,
    InstanceQuery,
    InstanceStatus,
    JobFilter,
    JobListRequest,
    list_request,
    newest_jobs,
    runtime_statuses_for,
)
from triggers.jobs import job_state

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


@dataclass
class Stored:
    exact: float  # seconds since the epoch, as the backend keeps it
    body: dict

    def shown(self) -> InstanceStatus:
        created = datetime.fromtimestamp(math.floor(self.exact), timezone.utc)
        return InstanceStatus.model_validate({**self.body, "createdTime": created.isoformat()})


class StandInHub:
    """Lists in instance-id order, `page_size` a page, filtering on the exact times; with
    `exclusive`, an instance created exactly on a bound is left out (no document says)."""

    def __init__(self, stored: list[Stored], page_size: int = 3, exclusive: bool = False):
        self.stored = sorted(stored, key=lambda item: item.body["instanceId"])
        self.page_size = page_size
        self.exclusive = exclusive
        self.queries: list[InstanceQuery] = []

    def within(self, exact: float, query: InstanceQuery) -> bool:
        low = query.created_from.timestamp() if query.created_from else -math.inf
        high = query.created_to.timestamp() if query.created_to else math.inf
        return low < exact < high if self.exclusive else low <= exact <= high

    async def pages(self, query: InstanceQuery):
        self.queries.append(query)
        matching = [item.shown() for item in self.stored if self.within(item.exact, query)
                    and (not query.runtime_statuses or item.body["runtimeStatus"] in query.runtime_statuses)]
        for start in range(0, max(len(matching), 1), self.page_size):
            yield matching[start:start + self.page_size]


def job(instance_id: str, exact: float, *, name: str = "poster", source: str = "http",
        runtime: str = "Completed", batches: int = 1) -> list[Stored]:
    """A job and its `render_batch` sub-orchestrations (created a little after it)."""
    body = {"name": "generate_batch", "instanceId": instance_id, "runtimeStatus": runtime,
            "input": {"job": {"name": name}, "source": source, "origin": ""}}
    children = [Stored(exact + 0.5 + index, {"name": "render_batch", "instanceId": f"{instance_id}:b{index}",
                                             "runtimeStatus": "Completed"}) for index in range(batches)]
    return [Stored(exact, body), *children]


def read_all(hub: StandInHub, top: int, filters: JobFilter = JobFilter()) -> tuple[list[str], int]:
    """Every page through to the last: the job ids in the order shown, and how many pages."""
    ids: list[str] = []
    after, pages = None, 0
    while True:
        page = asyncio.run(newest_jobs(hub, JobListRequest(top=top, after=after, filters=filters), base="", now=NOW))
        pages += 1
        assert len(page.jobs) <= top
        ids += [view["id"] for view in page.jobs]
        if page.next is None:
            return ids, pages
        after = Cursor.from_token(page.next.token())  # through the token, as a client would


def expected(stored: list[Stored], keep=lambda body: True) -> list[str]:
    jobs = [item for item in stored if item.body["name"] == "generate_batch" and keep(item.body)]
    return [item.body["instanceId"] for item in sorted(jobs, key=lambda item: (math.floor(item.exact),
                                                                                 item.body["instanceId"]), reverse=True)]


@settings(max_examples=60, deadline=None)
@given(offsets=st.lists(st.floats(min_value=0, max_value=90 * 86400), min_size=0, max_size=60),
       ties=st.integers(min_value=0, max_value=8), tie_hours=st.sampled_from([1, 2, 5, 21]),
       top=st.integers(min_value=1, max_value=9), page_size=st.integers(min_value=1, max_value=7),
       exclusive=st.booleans())
def test_paging_shows_every_job_once_newest_first_whatever_the_backend_order(offsets, ties, tie_hours, top,
                                                                             page_size, exclusive):
    stored: list[Stored] = []
    for index, offset in enumerate(offsets):
        stored += job(f"job-{index:03d}", NOW.timestamp() - offset, batches=index % 3)
    # Several jobs in one second, some exactly on a whole second that a window may end on
    # (1, 5 and 21 hours back from the newest page's edge).
    for index in range(ties):
        stored += job(f"tie-{index}", NOW.timestamp() - 3600 * tie_hours + (0.1 * index if index % 2 else 0))
    ids, _ = read_all(StandInHub(stored, page_size, exclusive), top)
    assert ids == expected(stored)


def test_three_hundred_jobs_read_in_pages_and_each_page_reads_little():
    stored: list[Stored] = []
    for index in range(300):  # one job every 20 minutes for 100 hours, three batches each
        stored += job(f"job-{index:03d}", NOW.timestamp() - 1200 * index, batches=3)
    hub = StandInHub(stored, page_size=100)
    ids, pages = read_all(hub, 20)
    assert ids == expected(stored) and pages == 15
    first = asyncio.run(newest_jobs(hub, JobListRequest(top=20), base="", now=NOW))
    # 20 jobs span 6.7 hours: windows of 1, 4 and 16 hours (21 h, about 63 jobs and their
    # batches) are read, not the 1,200 instances of the hub.
    assert first.instances_read < 300 and first.requests <= 4


def test_filters_combine_and_reach_back_to_created_after():
    stored: list[Stored] = []
    for index in range(40):
        stored += job(f"job-{index:02d}", NOW.timestamp() - 3600 * index,
                      name="poster" if index % 2 else "banner", source=("http", "blob", "schedule")[index % 3],
                      runtime="Failed" if index % 5 == 0 else "Completed")
    hub = StandInHub(stored)
    since = NOW - timedelta(hours=20, minutes=30)
    ids, _ = read_all(hub, 4, JobFilter(source="blob", name_prefix="post", created_after=since))
    wanted = expected(stored, lambda body: body["input"]["source"] == "blob"
                      and body["input"]["job"]["name"].startswith("post"))
    assert ids == [i for i in wanted if int(i[4:]) <= 20]
    failed, _ = read_all(hub, 3, JobFilter(status="failed"))
    assert failed == expected(stored, lambda body: body["runtimeStatus"] == "Failed")
    assert all(query.runtime_statuses == ("Failed",) for query in hub.queries[-3:])


def test_a_quiet_year_costs_a_few_empty_windows_then_one_open_read():
    stored = job("old-1", NOW.timestamp() - 3 * 365 * 86400) + job("old-2", NOW.timestamp() - 4 * 365 * 86400)
    hub = StandInHub(stored)
    ids, pages = read_all(hub, 20)
    assert ids == ["old-1", "old-2"] and pages == 1
    assert len(hub.queries) <= 8 and hub.queries[-1].created_from is None


@pytest.mark.parametrize("runtime", ["Pending", "Running", "ContinuedAsNew", "Completed", "Failed", "Terminated",
                                     "Suspended"])
@pytest.mark.parametrize("progress_phase, progress_status", [(None, None), ("awaiting review", None),
                                                             ("done", "partial"), ("done", "cancelled")])
@pytest.mark.parametrize("summary_status", [None, "completed", "rejected", "cancelled"])
def test_the_status_filter_never_leaves_out_a_runtime_status_that_can_show_it(
        runtime, progress_phase, progress_status, summary_status):
    from imagegen.records.messages import Progress

    progress = Progress(phase=progress_phase, total=1, status=progress_status) if progress_phase else None
    output = {"job_id": "j", "name": "j", "status": summary_status, "total": 1, "manifest": "m",
              "manifest_url": "u"} if summary_status else None
    state = job_state(runtime, output, progress)
    assert runtime in runtime_statuses_for(state), (runtime, state)


@pytest.mark.parametrize("params, path, words", [
    ({"top": "0"}, "top", "from 1 to 200, got '0'"),
    ({"top": "lots"}, "top", "from 1 to 200, got 'lots'"),
    ({"top": str(MOST_TOP + 1)}, "top", "from 1 to 200"),
    ({"continuationToken": "-4"}, "continuationToken", "of a previous page, unchanged, got '-4'"),
    ({"continuationToken": "eyJ4IjoxfQ"}, "continuationToken", "previous page"),  # {"x":1}: no cursor
    ({"top": "²"}, "top", "from 1 to 200"),
    ({"continuationToken": "jöb"}, "continuationToken", "previous page"),
    ({"continuationToken": Cursor(created=datetime(9999, 12, 31, tzinfo=timezone.utc), id="x").token()},
     "continuationToken", "previous page"),
    ({"createdAfter": "0001-01-01T00:00:00+05:00"}, "createdAfter", "from 1970 to 9000"),
    ({"status": "done"}, "status", "one of queued, running"),
    ({"source": "ftp"}, "source", "one of http, blob, schedule, got 'ftp'"),
    ({"createdAfter": "yesterday"}, "createdAfter", "ISO 8601"),
])
def test_a_bad_parameter_is_named_with_its_rule_and_value(params, path, words):
    with pytest.raises(JobValidationError) as raised:
        list_request(params)
    (error,) = raised.value.errors
    assert error.path == path and words in error.message, error


def test_a_good_request_reads_every_parameter():
    token = Cursor(created=NOW, id="job-1").token()
    request = list_request({"top": "7", "continuationToken": token, "status": "partial", "source": "blob",
                            "namePrefix": "post", "createdAfter": "2026-02-01"})
    assert request.top == 7 and request.after == Cursor(created=NOW, id="job-1")
    assert request.filters == JobFilter(status="partial", source="blob", name_prefix="post",
                                        created_after=datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert "job-1" not in token and "2026" not in token  # opaque, not the cursor in plain sight
