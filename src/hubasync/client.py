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
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterable, Iterator, Optional, Union

from .access import check_key_and_origin
from .cursor import Cursor
from .errors import UsageError
from .params import Query, query_url
from .pipeline import fetch_pages
from .proxy import parse_proxy_url
from .retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT, RetryPolicy
from .session import HubSession, hub_transport
from .stream import Batch
from .urls import parse_share_url

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


class _SpoolDestination:
    """The library's destination: each page is spooled, and handed out once committed."""

    def __init__(self) -> None:
        self.ready: Optional[tuple[IO[bytes], int]] = None
        self._spool: Optional[IO[bytes]] = None
        self._count = 0

    @contextmanager
    def page(self) -> Iterator[_SpoolDestination]:
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._count = 0
        try:
            yield self
        finally:
            if self._spool is not None:  # not committed
                self._spool.close()
                self._spool = None

    def write(self, batch: Batch) -> None:
        assert self._spool is not None
        self._spool.write(batch.lines())
        self._spool.write(b"\n")
        self._count += batch.count

    def commit(self, cursor: Cursor) -> None:
        assert self._spool is not None
        self.ready = (self._spool, self._count)
        self._spool = None

    def take(self) -> tuple[IO[bytes], int]:
        assert self.ready is not None
        ready, self.ready = self.ready, None
        return ready


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
    variable. ``proxy`` is an HTTP proxy's URL (``http://[USER:PASSWORD@]HOST:PORT``), ``""``
    for none, or None (the default) to read ``https_proxy``/``http_proxy``/``no_proxy`` from
    the environment as :mod:`urllib` does. Failures raise :mod:`hubasync.errors` exceptions.
    """

    url: str
    apikey: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    cacert: Optional[str] = None
    allow_http: bool = False
    proxy: Optional[str] = None

    def __post_init__(self) -> None:
        self._share = parse_share_url(self.url)
        key = self.apikey or self._share.apikey or os.environ.get("APIKEY")
        if not key:
            raise UsageError("no API key: pass apikey= or set APIKEY")
        check_key_and_origin(self._share, key, allow_http=self.allow_http)
        self._key = key
        if self.proxy:
            parse_proxy_url(self.proxy, "proxy")  # refused now, before any request

    def __repr__(self) -> str:
        return f"Client({self._share.display()!r})"

    def _session(self, count: bool) -> HubSession:
        transport = hub_transport(self._share.with_count(count), self._key,
                                  timeout=self.timeout, cacert=self.cacert, proxy=self.proxy)
        # strict: every event is parsed on arrival, so a page never fails once handed out
        return HubSession(transport, policy=RetryPolicy(retries=self.retries), strict=True)

    def count(self, *, start: Optional[str] = None, end: Optional[str] = None,
              filter: Optional[str] = None, params: Optional[dict[str, str]] = None) -> int:
        """How many events match the query."""
        query = _query(start, end, filter, None, None, False, params)
        query.check_for(self._share)
        session = self._session(count=True)
        try:
            job = session.job(query_url(self._share.with_count(True), query))
            return session.count(job, session.attempts())
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
        destination = _SpoolDestination()

        def url_for(cursor: Cursor) -> str:
            return query_url(self._share, query, limit=cursor.page_limit, token=cursor.token)

        before = Cursor(token=token, limit=limit)
        pages = fetch_pages(session, url_for, before, destination, attempts=session.attempts)
        try:
            for after in pages:
                spool, count = destination.take()
                yield Page(spool, count, before.token, after.token, after.last_inserted)
                before = after
        finally:
            pages.close()
            session.close()

    def events(self, **query: Any) -> Iterator[Event]:
        """The query's events as dicts; takes the same keywords as :meth:`pages`."""
        for page in self.pages(**query):
            try:
                yield from page
            finally:
                page.close()
