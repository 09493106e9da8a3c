"""The library API: :class:`Client` with ``events``, ``pages`` and ``count``.

A page is handed out only once it has arrived whole, so an iteration never yields an event
twice, even when a body failed half-way and the page was fetched again. While it arrives, a
page is spooled (in memory up to a few megabytes, then in a temporary file), so memory does
not grow with the page size.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterable, Iterator, Optional, Union

from .errors import UsageError
from .pages import Pager
from .params import Query, encode_query
from .retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT, RetryPolicy
from .session import HubSession, PageHead
from .stream import DEFAULT_MAX_EVENT_SIZE, Batch
from .urls import is_loopback, parse_share_url

Event = Dict[str, Any]
SPOOL_MEMORY = 8 * 1024 * 1024


class Page:
    """One page of results: its events (read lazily from the spool) and its tokens."""

    def __init__(self, spool: IO[bytes], count: int, token: Optional[str],
                 next_token: Optional[str], last_inserted_token: Optional[str]) -> None:
        self._spool = spool
        self.count = count
        self.token = token
        self.next_token = next_token
        self.last_inserted_token = last_inserted_token

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Event]:
        """The page's events as dicts, in the hub's order."""
        self._spool.seek(0)
        for line in self._spool:
            event: Event = json.loads(line)
            yield event

    @property
    def events(self) -> list[Event]:
        """All the page's events at once (holds the whole page in memory)."""
        return list(self)

    def close(self) -> None:
        self._spool.close()


class _Spooler:
    """A page consumer that keeps the page in a spool until it is complete."""

    def __init__(self) -> None:
        self.spool: IO[bytes] = self._new()
        self.count = 0

    @staticmethod
    def _new() -> IO[bytes]:
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)

    def page_started(self, head: PageHead) -> None:
        self.count = 0

    def page_events(self, batch: Batch) -> None:
        self.spool.write(batch.lines())
        self.spool.write(b"\n")
        self.count += batch.count

    def page_failed(self) -> None:
        self.spool.close()
        self.spool = self._new()
        self.count = 0

    def take(self) -> tuple[IO[bytes], int]:
        spool, count = self.spool, self.count
        self.spool, self.count = self._new(), 0
        return spool, count


def _query(start: Optional[str], end: Optional[str], filter: Optional[str],
           projection: Union[str, Iterable[str], None], sort: Optional[str], reverse: bool,
           params: Optional[dict[str, str]]) -> Query:
    if isinstance(projection, str):
        keys: tuple[str, ...] = tuple(k.strip() for k in projection.split(",") if k.strip())
    else:
        keys = tuple(projection or ())
    return Query(start=None if start is None else str(start),
                 end=None if end is None else str(end), filter=filter, projection=keys,
                 sort=sort, reverse=reverse, extra=tuple((params or {}).items()))


@dataclass
class Client:
    """A share of an Arctic Hub, read through the async API.

    ``url`` is the share's URL as the command line takes it (async, sync or with
    ``?apikey=``); ``apikey`` defaults to the URL's key, then to the ``APIKEY`` environment
    variable. ``max_event_size`` caps one event's size in bytes (as ``--max-event-size``):
    a larger one raises ``BodyTooLarge``. Failures raise :mod:`hubasync.errors` exceptions.
    """

    url: str
    apikey: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    cacert: Optional[str] = None
    allow_http: bool = False
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE

    def __post_init__(self) -> None:
        if type(self.max_event_size) is not int:
            raise TypeError(f"max_event_size must be an int (bytes): {self.max_event_size!r}")
        if self.max_event_size < 1024:
            raise ValueError(f"max_event_size must be at least 1024 bytes: "
                             f"{self.max_event_size!r}")
        self._share = parse_share_url(self.url)
        key = self.apikey or self._share.apikey or os.environ.get("APIKEY")
        if not key:
            raise UsageError("no API key: pass apikey= or set APIKEY")
        if self._share.scheme == "http" and not (self.allow_http or
                                                 is_loopback(self._share.host)):
            raise UsageError("refusing plain http to a remote host (allow_http=True to force)")
        self._key = key

    def __repr__(self) -> str:
        return f"Client({self._share.display()!r})"

    def _session(self, count: bool) -> HubSession:
        # strict: every event is parsed on arrival, so a page never fails once handed out
        return HubSession(self._share.with_count(count), self._key, timeout=self.timeout,
                          policy=RetryPolicy(retries=self.retries), cacert=self.cacert,
                          strict=True, max_event_size=self.max_event_size)

    def count(self, *, start: Optional[str] = None, end: Optional[str] = None,
              filter: Optional[str] = None, params: Optional[dict[str, str]] = None) -> int:
        """How many events match the query."""
        query = _query(start, end, filter, None, None, False, params)
        query.check_for(self._share)
        session = self._session(count=True)
        try:
            pairs = query.pairs()
            url = session.share.post_url + ("?" + encode_query(pairs) if pairs else "")
            return session.count(url)
        finally:
            session.close()

    def pages(self, *, limit: Optional[int] = None, token: Optional[str] = None,
              start: Optional[str] = None, end: Optional[str] = None,
              filter: Optional[str] = None, projection: Union[str, Iterable[str], None] = None,
              sort: Optional[str] = None, reverse: bool = False,
              params: Optional[dict[str, str]] = None) -> Iterator[Page]:
        """The query's pages, each complete, with the token that continues after it."""
        if limit is not None and limit < 1:
            raise UsageError("limit must be at least 1")
        query = _query(start, end, filter, projection, sort, reverse, params)
        query.check_for(self._share)
        session = self._session(count=False)
        pager = Pager(session, query, limit=limit, token=token)
        spooler = _Spooler()
        try:
            while True:
                result = pager.next_page(spooler)
                if result is None:
                    return
                spool, count = spooler.take()
                yield Page(spool, count, result.token, result.next_token,
                           result.last_inserted_token)
        finally:
            pager.close()
            spooler.spool.close()
            session.close()

    def events(self, **query: Any) -> Iterator[Event]:
        """The query's events as dicts; takes the same keywords as :meth:`pages`."""
        for page in self.pages(**query):
            try:
                yield from page
            finally:
                page.close()
