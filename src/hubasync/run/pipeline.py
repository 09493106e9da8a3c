"""The run loop: page after page from a cursor into a target, each committed whole.

This is the one place where a run's pages are fetched, written, committed and retried::

    while not cursor.done:
        stream = yield from session.open_page(job)    # the job's phases, over the transport
        with target.page() as page:                   # rolled back unless committed
            for batch in stream:                      # whole events, the hub's own bytes
                page.write(batch)
            page.commit(cursor.advance(stream.result))  # output, then state, in one piece
        yield Committed(cursor)

A failure anywhere in a page goes to the page's :class:`~hubasync.core.retry.Attempts`, which
re-raises it unless it is transient; a transient one is retried by opening the page again
(the job knows whether that means polling again or posting the query anew). As soon as a page's
headers give ``X-Next-Token``, the next page's query is posted, so the hub works on it while
this page streams. The CLI, the library and the sync service all run this loop.

The loop never sleeps and never blocks on the hub for long: it is a generator of steps, and
whenever there is nothing to do yet (a poll not due, a retry backing off, an answer or a body's
bytes not arrived) it yields a :class:`~hubasync.core.clock.Wait` to its driver
(:mod:`hubasync.run.driving`), which sleeps, notices a stop, or lets another share have the
thread. A driver that stops closes the generator: the page being written is rolled back.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable, Generator, Optional, Protocol, Union

from hubasync.core.clock import Wait
from hubasync.core.cursor import Cursor
from hubasync.core.retry import Attempts
from hubasync.core.stalls import StallDetector
from hubasync.errors import HubasyncError
from hubasync.events.splitter import Batch
from hubasync.transport.body import PageStream
from hubasync.transport.interface import Exchange
from hubasync.transport.session import HubSession


class PageTransaction(Protocol):
    """One page on its way into a target."""

    def write(self, batch: Batch) -> None: ...

    def commit(self, cursor: Cursor) -> None:
        """Make the page part of the target, with ``cursor`` as its new position."""
        ...


class PageTarget(Protocol):
    """Where pages go: ``page()`` opens one, rolled back if left without a commit."""

    def page(self) -> AbstractContextManager[PageTransaction]: ...


@dataclass
class _Upcoming:
    """A page's query sent ahead of time, for a page starting at ``token`` with ``limit``."""

    token: str
    limit: Optional[int]
    url: str
    sent: Exchange

    def serves(self, cursor: Cursor) -> bool:
        """Whether it can be the query of the page ``cursor`` starts: the same token, and no
        more events asked than are wanted (fewer only make one more page)."""
        wanted = cursor.page_limit
        if self.token != cursor.token or (self.limit is None) != (wanted is None):
            return False
        return self.limit is None or wanted is None or self.limit <= wanted

    def cancel(self) -> None:
        self.sent.cancel()


@dataclass(frozen=True)
class Committed:
    """A step of the run loop: a page was committed, and ``cursor`` is where the run stands."""

    cursor: Cursor


Step = Union[Wait, Committed]
Progress = Callable[[Cursor, PageStream], None]


def fetch_pages(session: HubSession, url_for: Callable[[Cursor], str], cursor: Cursor,
                target: PageTarget, *, attempts: Callable[[], Attempts],
                stalls: Optional[StallDetector] = None, prefetch: bool = True,
                progress: Optional[Progress] = None) -> Generator[Step, None, None]:
    """Fetch the pages from ``cursor`` until it is done, as steps: a :class:`Committed` after
    each page, a :class:`~hubasync.core.clock.Wait` whenever there is nothing to do yet.

    ``url_for(cursor)`` is the query URL of the page a cursor starts. ``progress`` is called
    after each batch written. Closing the generator (its driver stops) rolls back the page
    being written and cancels a query sent ahead.
    """
    stalls = stalls or StallDetector()
    upcoming: Optional[_Upcoming] = None
    try:
        while not cursor.done:
            url, limit = url_for(cursor), cursor.page_limit
            sent: Optional[Exchange] = None
            if upcoming is not None and upcoming.serves(cursor):
                url, limit, sent = upcoming.url, upcoming.limit, upcoming.sent
            elif upcoming is not None:
                upcoming.cancel()
            upcoming = None
            job = session.job(url)
            tries = attempts()
            while True:
                try:
                    stream = yield from session.open_page(job, cursor.token, max_events=limit,
                                                          sent=sent)
                    sent = None
                    if prefetch and stream.next_token is not None:
                        upcoming = _send_ahead(session, url_for, cursor, stream.next_token)
                    after = yield from _write_page(stream, cursor, target, stalls, progress)
                except HubasyncError as error:
                    sent = None
                    if upcoming is not None:
                        upcoming.cancel()
                        upcoming = None
                    wait = tries.failed(error)  # raises it again unless it is transient
                    if wait > 0:
                        yield Wait(session.clock.now() + wait, "retry")
                    continue
                break
            cursor = after
            yield Committed(cursor)
    finally:
        if upcoming is not None:
            upcoming.cancel()


def _write_page(stream: PageStream, cursor: Cursor, target: PageTarget, stalls: StallDetector,
                progress: Optional[Progress]) -> Generator[Wait, None, Cursor]:
    with target.page() as page:
        for batch in stream:
            if batch is None:
                yield Wait(None, "body")
                continue
            page.write(batch)
            if progress is not None:
                progress(cursor, stream)
        result = stream.result
        stalls.check(result.token, result.next_token, result.events, stream.signature)
        after = cursor.advance(result)
        page.commit(after)
    return after


def _send_ahead(session: HubSession, url_for: Callable[[Cursor], str], cursor: Cursor,
                next_token: str) -> Optional[_Upcoming]:
    ahead = cursor.ahead(next_token)
    if ahead is None:
        return None
    url = url_for(ahead)
    sent = session.send_ahead(url)
    return None if sent is None else _Upcoming(next_token, ahead.page_limit, url, sent)
