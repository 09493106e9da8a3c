"""Pages and tokens: one query after another until the events or the wanted number run out.

The :class:`Pager` keeps the position (the token the next page starts from), splits a
``--limit`` above 100,000 into several queries, never asks for more events than are still
wanted, and sends the next page's query as soon as the current page's ``X-Next-Token`` is
known.
"""

from __future__ import annotations

from typing import Callable, Optional

from .errors import ProtocolError
from .params import MAX_PAGE_LIMIT, Query, encode_query
from .session import HubSession, PageConsumer, PageResult, Prefetched


class Pager:
    """Walks a query's pages from a starting token."""

    def __init__(self, session: HubSession, query: Query, *, limit: Optional[int] = None,
                 token: Optional[str] = None, prefetch: bool = True) -> None:
        self.session = session
        self.query = query
        self.token = token  # where the next page starts; None = the beginning
        self.remaining = limit  # events still wanted; None = all
        self.done = False
        self.more_token: Optional[str] = None  # set when the limit stopped a run with more left
        self.last_inserted_token: Optional[str] = None
        self.events = 0
        self.pages = 0
        self._prefetch = prefetch
        self._prefetched: Optional[Prefetched] = None
        self._attempts = session.attempts()

    def url(self, token: Optional[str], limit: Optional[int]) -> str:
        """The query URL of the page starting at ``token`` with at most ``limit`` events."""
        pairs = self.query.pairs(limit=limit, token=token)
        query = encode_query(pairs)
        return self.session.share.post_url + ("?" + query if query else "")

    def next_page(self, consumer: PageConsumer) -> Optional[PageResult]:
        """Fetch the next page into ``consumer``; None once there is nothing more to fetch."""
        if self.done:
            return None
        limit = None if self.remaining is None else min(self.remaining, MAX_PAGE_LIMIT)
        prefetched = self._take_prefetched()
        if prefetched is not None:
            limit = prefetched.limit
        result, self._prefetched = self.session.fetch_page(
            self.url(self.token, limit), self.token, consumer, self._attempts,
            max_events=limit,
            prefetched=None if prefetched is None else prefetched.exchange,
            send_next=self._send_next(limit) if self._prefetch else None,
        )
        self._advance(result)
        return result

    def close(self) -> None:
        """Drop a query sent ahead that will not be used."""
        if self._prefetched is not None:
            self._prefetched.exchange.cancel()
            self._prefetched = None

    def _take_prefetched(self) -> Optional[Prefetched]:
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return None
        if prefetched.token != self.token:
            prefetched.exchange.cancel()
            return None
        return prefetched

    def _send_next(self, limit: Optional[int]) -> Callable[[str], Optional[Prefetched]]:
        """How to send the next page's query once this page's ``X-Next-Token`` is known."""
        remaining = self.remaining

        def send(next_token: str) -> Optional[Prefetched]:
            if remaining is None or limit is None:
                next_limit = None
            else:
                after = remaining - limit
                if after <= 0:
                    return None
                next_limit = min(after, MAX_PAGE_LIMIT)
            exchange = self.session.send_query(self.url(next_token, next_limit))
            return None if exchange is None else Prefetched(next_token, next_limit, exchange)

        return send

    def _advance(self, result: PageResult) -> None:
        self.pages += 1
        self.events += result.events
        if result.last_inserted_token:
            self.last_inserted_token = result.last_inserted_token
        if self.remaining is not None:
            self.remaining -= result.events
        if result.next_token is None:
            self.done = True
            self.token = None
            self.close()
            return
        if result.events == 0 and result.next_token == self.token:
            raise ProtocolError("the hub returned an empty page that does not move the token")
        self.token = result.next_token
        if self.remaining is not None and self.remaining <= 0:
            self.done = True
            self.more_token = result.next_token
            self.close()
