"""The run loop over an in-memory hub: retries, reposts, prefetch, rollback, limits, bounds."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import pytest

from hubasync.core.cursor import Cursor
from hubasync.core.params import Query, query_url
from hubasync.core.retry import RetryPolicy
from hubasync.core.stalls import StallDetector
from hubasync.core.urls import parse_share_url
from hubasync.errors import (
    AuthError,
    BadBody,
    HubUnavailable,
    JobTimeout,
    NoProgress,
    PageTimeout,
    ProtocolError,
)
from hubasync.events.splitter import Batch
from hubasync.run.driving import drive
from hubasync.run.pipeline import fetch_pages
from hubasync.transport.session import HubSession

from .memory_hub import URL, MemoryHub, Reply, network_error, reply

SHARE = parse_share_url(URL)
NO_QUERY = Query()


class ListDestination:
    """Committed events, in order; what was rolled back; the cursors committed."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.cursors: List[Cursor] = []
        self.rollbacks = 0
        self._pending: List[Dict[str, Any]] = []

    @contextmanager
    def page(self) -> Iterator[ListDestination]:
        self._pending = []
        committed = len(self.cursors)
        try:
            yield self
        finally:
            if len(self.cursors) == committed:
                self.rollbacks += 1

    def write(self, batch: Batch) -> None:
        self._pending.extend(json.loads(raw) for raw in batch.events())

    def commit(self, cursor: Cursor) -> None:
        self.events.extend(self._pending)
        self.cursors.append(cursor)
        self.sent_at_commit.append(len(self.hub.sent) if self.hub is not None else 0)

    hub: Optional[MemoryHub] = None
    sent_at_commit: List[int]


def run(hub: MemoryHub, cursor: Optional[Cursor] = None, *, retries: int = 4,
        prefetch: bool = True, query: Query = NO_QUERY, stalls: Optional[StallDetector] = None,
        session: Optional[HubSession] = None,
        target: Optional[ListDestination] = None) -> ListDestination:
    session = session or HubSession(hub.transport(), clock=hub.clock,
                                    policy=RetryPolicy(retries=retries))
    recorder = target if target is not None else ListDestination()
    recorder.hub, recorder.sent_at_commit = hub, []

    def url_for(at: Cursor) -> str:
        return query_url(SHARE, query, limit=at.page_limit, token=at.token)

    drive(fetch_pages(session, url_for, cursor or Cursor(), recorder,
                      attempts=session.attempts, prefetch=prefetch, stalls=stalls), session.clock)
    return recorder


def test_every_event_once_in_order() -> None:
    hub = MemoryHub(events=25, page_max=10)
    got = run(hub)
    assert [e["n"] for e in got.events] == list(range(25))
    assert [c.events for c in got.cursors] == [10, 20, 25]
    assert got.cursors[-1].done and got.cursors[-1].last_inserted == "t25"
    assert got.rollbacks == 0


def test_the_next_query_is_sent_ahead_and_used() -> None:
    hub = MemoryHub(events=25, page_max=10)
    run(hub)
    posts = hub.requests("POST")
    assert len(posts) == 3 and hub.cancelled == []
    # the second POST went out before the first page's results were read to their end
    order = [url for _, url in hub.sent]
    assert order.index(posts[1]) < order.index(hub.requests("GET", "/results/j2")[0])


def test_without_prefetch_each_query_is_sent_when_due() -> None:
    hub = MemoryHub(events=25, page_max=10)
    got = run(hub, prefetch=False)
    assert len(got.events) == 25
    posts = hub.requests("POST")
    assert len(posts) == 3
    # the second query went out only once the first page was committed
    assert [url for _, url in hub.sent].index(posts[1]) >= got.sent_at_commit[0]


def test_with_prefetch_the_next_query_goes_before_the_commit() -> None:
    hub = MemoryHub(events=25, page_max=10)
    got = run(hub)
    posts = hub.requests("POST")
    assert [url for _, url in hub.sent].index(posts[1]) < got.sent_at_commit[0]


def test_a_query_sent_ahead_is_cancelled_when_its_page_fails() -> None:
    hub = MemoryHub(events=25, page_max=10)
    failing = hub.page({"limit": "10"})
    failing.body = [failing.body[0], network_error("reset in the body")]
    hub.faults["results"] = [failing]
    got = run(hub)
    assert [e["n"] for e in got.events] == list(range(25))
    assert len(hub.cancelled) == 1  # the query sent ahead of the failed page
    assert "token=t10" in hub.cancelled[0]


def test_a_limit_asks_for_no_more_than_is_wanted() -> None:
    hub = MemoryHub(events=25, page_max=10)
    got = run(hub, Cursor(limit=15))
    assert [e["n"] for e in got.events] == list(range(15))
    assert [q.rsplit("?", 1)[1] for q in hub.requests("POST")] == ["limit=15", "limit=5&token=t10"]
    last = got.cursors[-1]
    assert (last.done, last.more, last.token) == (True, True, "t15")


def test_a_body_failing_half_way_is_rolled_back_and_posted_again() -> None:
    hub = MemoryHub(events=25, page_max=10)
    good = hub.page({"token": "t10"})
    calls = {"n": 0}

    def cut_second_page(query: Dict[str, str]) -> Optional[Reply]:
        if query.get("token") == "t10" and calls["n"] == 0:
            calls["n"] += 1
            return Reply(200, good.headers, [good.body[0], BadBody("body cut short")])
        return None

    hub.page_hook = cut_second_page
    got = run(hub)
    assert [e["n"] for e in got.events] == list(range(25))  # nothing twice, nothing lost
    assert got.rollbacks == 1
    assert len(hub.requests("POST", "token=t10")) == 2  # results can be fetched only once


def test_a_failed_status_poll_is_polled_again_not_posted_again() -> None:
    hub = MemoryHub(events=5, page_max=10)
    hub.faults["status"] = [reply(503, Retry_After="2"), network_error()]
    got = run(hub)
    assert len(got.events) == 5 and len(hub.requests("POST")) == 1
    assert len(hub.requests("GET", "/jobs/")) == 3
    assert 2.0 in hub.clock.slept  # Retry-After honoured


@pytest.mark.parametrize("fault", [reply(410, X_STATUS="Job expired"), reply(404)])
def test_a_job_gone_is_posted_again(fault: Reply) -> None:
    hub = MemoryHub(events=5, page_max=10)
    hub.faults["results"] = [fault]
    assert len(run(hub).events) == 5
    assert len(hub.requests("POST")) == 2


def test_a_failure_to_send_is_retried() -> None:
    hub = MemoryHub(events=5)
    hub.faults["send"] = [network_error("connection refused")]
    assert len(run(hub).events) == 5


def test_a_prefetched_query_that_failed_is_posted_again() -> None:
    hub = MemoryHub(events=25, page_max=10)
    hub.faults["post"] = [None, reply(503, Retry_After="1")]  # the query sent ahead fails
    got = run(hub)
    assert [e["n"] for e in got.events] == list(range(25))
    assert len(hub.requests("POST", "token=t10")) == 2


def test_a_query_sent_ahead_for_fewer_events_than_wanted_is_used() -> None:
    hub = MemoryHub(events=25, page_max=10)
    good = hub.page({})
    calls = {"n": 0}

    def fewer_than_asked(query: Dict[str, str]) -> Optional[Reply]:
        if not query.get("token") and calls["n"] == 0:  # 5 events where 10 were asked for
            calls["n"] += 1
            part = MemoryHub(events=5, page_max=5, gzip_bodies=False).page({})
            return Reply(200, dict(good.headers, **{"X-Next-Token": "t5",
                                                    "Content-Encoding": "identity"}),
                         part.body)
        return None

    hub.page_hook = fewer_than_asked
    got = run(hub, Cursor(limit=150_000))
    assert [e["n"] for e in got.events] == list(range(25))
    posts = hub.requests("POST")
    assert posts[1].endswith("?limit=50000&token=t5")  # sent for a full first page
    assert hub.cancelled == [] and len(posts) == 3  # used: it asks for fewer, never more


def test_a_final_answer_is_not_retried() -> None:
    hub = MemoryHub(events=5)
    hub.faults["post"] = [reply(401, b'{"title": "401 Unauthorized"}')]
    with pytest.raises(AuthError):
        run(hub)
    assert len(hub.requests("POST")) == 1


def test_retries_end_saying_what_failed() -> None:
    hub = MemoryHub(events=5)
    hub.faults["status"] = [reply(503)] * 10
    with pytest.raises(HubUnavailable, match="gave up after 3 failed attempts"):
        run(hub, retries=2)


def test_more_events_than_asked_for_end_the_run() -> None:
    hub = MemoryHub(events=25, page_max=10)
    hub.page_hook = lambda query: MemoryHub(events=12, page_max=12, gzip_bodies=False).page({})
    with pytest.raises(ProtocolError, match="more than the 10 events"):
        run(hub, Cursor(limit=10))


def test_a_body_slower_than_its_deadline_ends_the_run() -> None:
    hub = MemoryHub(events=5)
    slow = Reply(200, {}, [b"[", 600.0, b" ", 600.0, b"]"])
    hub.page_hook = lambda query: slow
    session = HubSession(hub.transport(), clock=hub.clock, page_timeout=900.0)
    with pytest.raises(PageTimeout):
        run(hub, session=session)


def test_a_job_pending_forever_ends_the_run() -> None:
    hub = MemoryHub(events=5, latency=10_000.0)
    session = HubSession(hub.transport(), clock=hub.clock, job_timeout=60.0)
    with pytest.raises(JobTimeout):
        run(hub, session=session)
    assert 55 < hub.clock.time - 1000.0 < 70


def test_a_token_that_does_not_move_ends_the_run() -> None:
    hub = MemoryHub(events=25, page_max=10)

    def same_token(query: Dict[str, str]) -> Optional[Reply]:
        answer = MemoryHub(events=25, page_max=10).page(query)
        if query.get("token"):
            answer.headers["X-Next-Token"] = query["token"]
        return answer

    hub.page_hook = same_token
    got = ListDestination()
    with pytest.raises(NoProgress):
        run(hub, target=got)
    # the first page moved on (to t10); the page asked with t10 that names t10 again never is
    assert [e["n"] for e in got.events] == list(range(10)) and len(got.cursors) == 1
    assert got.rollbacks == 1 and len(hub.requests("GET", "/results/")) == 2


def test_an_empty_share_is_one_empty_page() -> None:
    got = run(MemoryHub(events=0))
    assert got.events == [] and len(got.cursors) == 1 and got.cursors[0].done
