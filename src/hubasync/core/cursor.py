"""Where a run stands: the one owner of the position, the events and the pages of a run.

A :class:`Cursor` is a small immutable value. It says which page comes next (the token to
continue from, how many events are still wanted), advances from a finished page
(:meth:`Cursor.advance`), starts the next pass of a follow (:meth:`Cursor.next_pass`), and is
what the state file records (:func:`hubasync.run.recorder.cursor_from_state`). Nothing else
counts events or pages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

from hubasync.core.params import MAX_PAGE_LIMIT
from hubasync.errors import ProtocolError


@dataclass(frozen=True)
class PageResult:
    """A page read to its end: the token it was asked with, what the hub said, its events."""

    token: Optional[str]
    next_token: Optional[str]
    last_inserted_token: Optional[str]
    events: int


@dataclass(frozen=True)
class Cursor:
    """The position of a run after its committed pages.

    ``token`` continues right after the last committed page (None: from the start, or, once
    ``done``, nothing is left). ``limit`` is the most events the run (or, following, each pass)
    may bring; ``events`` and ``pages`` are what it brought. ``done``: nothing more to fetch in
    this pass; ``more``: done because the limit was reached with events left (``token``
    continues them). ``last_inserted`` is the hub's newest insertion as last seen, where a
    follow or a later sync goes on from.
    """

    token: Optional[str] = None
    limit: Optional[int] = None
    events: int = 0
    pages: int = 0
    last_inserted: Optional[str] = None
    done: bool = False
    more: bool = False

    @property
    def remaining(self) -> Optional[int]:
        """Events still wanted; None for all."""
        return None if self.limit is None else max(0, self.limit - self.events)

    @property
    def page_limit(self) -> Optional[int]:
        """The ``limit`` of the next page's query: never more than is still wanted."""
        remaining = self.remaining
        return None if remaining is None else min(remaining, MAX_PAGE_LIMIT)

    def starting(self) -> Cursor:
        """This cursor, done at once if the limit is already reached."""
        if self.remaining == 0 and not self.done:
            return replace(self, done=True, more=self.token is not None)
        return self

    def advance(self, page: PageResult) -> Cursor:
        """The cursor after ``page`` is committed."""
        events = self.events + page.events
        last_inserted = page.last_inserted_token or self.last_inserted
        moved = replace(self, events=events, pages=self.pages + 1,
                        last_inserted=last_inserted)
        if page.next_token is None:
            return replace(moved, token=None, done=True, more=False)
        if moved.remaining == 0:
            return replace(moved, token=page.next_token, done=True, more=True)
        return replace(moved, token=page.next_token)

    def ahead(self, next_token: str) -> Optional[Cursor]:
        """Where the next page will start if the page now arriving, asked with
        ``page_limit`` events, ends with ``next_token``: what its query can be sent early for.
        None when that page will not be needed."""
        asked = self.page_limit
        if asked is not None:
            after = replace(self, events=self.events + asked, token=next_token)
            return None if after.remaining == 0 else after
        return replace(self, token=next_token)

    def next_pass(self) -> Cursor:
        """Following: a new pass from the newest inserted event, with a fresh limit."""
        if not self.more and self.last_inserted is None and self.events:
            raise ProtocolError("the hub sent no X-Last-Inserted-Token: cannot follow")
        token = self.token if self.more else self.last_inserted
        return replace(self, token=token, events=0, done=False, more=False).starting()
