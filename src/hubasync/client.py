"""The library API: :class:`Client` with ``events``, ``pages`` and ``count``.

A page is handed out only once it has arrived whole, so an iteration never yields an event
twice, even when a body failed half-way and the page was fetched again. While it arrives, a
page is spooled (in memory up to a few megabytes, then in a temporary file), so memory does
not grow with the page size.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterable, Iterator, Mapping, Optional, Union

from hubasync.core.access import check_key_and_origin
from hubasync.core.bounds import BY_NAME, DEFAULTS, Bounds
from hubasync.core.cursor import Cursor
from hubasync.core.params import Query, check_sendable, query_url, reserved_param
from hubasync.core.redaction import Secret, redact
from hubasync.core.retry import RetryPolicy
from hubasync.core.urls import parse_share_url
from hubasync.errors import InvalidArgument, InvalidArgumentType, UsageError
from hubasync.events.formats import FORMATS
from hubasync.events.splitter import Batch
from hubasync.run.driving import commits, drive
from hubasync.run.pipeline import fetch_pages
from hubasync.run.resumable import ResumableRun
from hubasync.run.settings import EXISTING, RunSettings
from hubasync.transport.http import hub_transport
from hubasync.transport.proxy import parse_proxy_url
from hubasync.transport.session import HubSession
from hubasync.transport.tls import check_cacert

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
        """The page's events as dicts, in the hub's order; each iterator reads on its own."""
        offset = 0
        while True:
            self._spool.seek(offset)
            line = self._spool.readline()
            if not line:
                return
            offset = self._spool.tell()
            event: Event = json.loads(line)
            yield event

    @property
    def events(self) -> list[Event]:
        """All the page's events at once (holds the whole page in memory)."""
        return list(self)

    def close(self) -> None:
        self._spool.close()


class _SpoolTarget:
    """The library's page target: each page is spooled, and handed out once committed."""

    def __init__(self) -> None:
        self.ready: Optional[tuple[IO[bytes], int]] = None
        self._spool: Optional[IO[bytes]] = None
        self._count = 0

    @contextmanager
    def page(self) -> Iterator[_SpoolTarget]:
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


def _text(name: str, value: Any, *, numbers: bool = False) -> Optional[str]:
    """A string argument (or None) checked: the right type, and text that can be sent."""
    if value is None:
        return None
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # epoch seconds, or <= 0 for seconds before now
    if not isinstance(value, str):
        kind = "a string or a number" if numbers else "a string"
        raise InvalidArgumentType(f"{name} must be {kind}, not {type(value).__name__}")
    check_sendable(name, value, InvalidArgument)
    return value


def _projection(value: Union[str, Iterable[str], None]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        check_sendable("projection", value, InvalidArgument)
        return tuple(k.strip() for k in value.split(",") if k.strip())
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgumentType(f"projection must be a string or an iterable of strings, "
                                  f"not {type(value).__name__}")
    keys = tuple(value)
    for key in keys:
        if not isinstance(key, str):
            raise InvalidArgumentType(f"projection keys must be strings, not "
                                      f"{type(key).__name__}")
        check_sendable("projection", key, InvalidArgument)
    return keys


def _params(params: Optional[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    if params is None:
        return ()
    if not isinstance(params, Mapping):
        raise InvalidArgumentType(f"params must be a dict of strings, not "
                                  f"{type(params).__name__}")
    pairs = []
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentType(f"params must map strings to strings: {key!r} -> "
                                      f"{type(value).__name__}")
        name = reserved_param(key)
        if name == "apikey":
            raise InvalidArgument(f"params[{key!r}] is refused: the key goes in the "
                                  "Authorization header only; pass apikey=")
        if name is not None:
            raise InvalidArgument(f"params[{key!r}] is refused: pass {name}= instead (the "
                                  f"query sets {name} itself)")
        check_sendable(f"params[{key!r}]", key, InvalidArgument)
        check_sendable(f"params[{key!r}]", value, InvalidArgument)
        pairs.append((key, value))
    return tuple(pairs)


def _query(start: Any, end: Any, filter: Any, projection: Union[str, Iterable[str], None],
           sort: Any, reverse: Any, params: Optional[Mapping[str, str]]) -> Query:
    if not isinstance(reverse, bool):
        raise InvalidArgumentType(f"reverse must be True or False, not {type(reverse).__name__}")
    return Query(start=_text("start", start, numbers=True), end=_text("end", end, numbers=True),
                 filter=_text("filter", filter), projection=_projection(projection),
                 sort=_text("sort", sort), reverse=reverse, extra=_params(params))


def _limit(limit: Any) -> Optional[int]:
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise InvalidArgumentType(f"limit must be a whole number, not {type(limit).__name__}")
    if limit < 1:
        raise InvalidArgument(f"limit must be at least 1, not {limit}")
    return limit


@dataclass(frozen=True)
class Downloaded:
    """What :meth:`Client.download` did: the events and pages this call wrote (``pages``
    counts every page of the output, earlier runs' included), and the token that continues
    when ``limit`` stopped it with events left (else None)."""

    events: int
    pages: int
    next_token: Optional[str]


def _path(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentType(f"{name} must be a path, not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise InvalidArgument(f"{name} must be a path given as text")
    return path


class Client:
    """A share of an Arctic Hub, read through the async API.

    ``url`` is the share's URL as the command line takes it (async, sync or with
    ``?apikey=``); ``apikey`` defaults to the URL's key, then to the ``APIKEY`` environment
    variable. The key is never shown: not by ``repr()``, ``str()`` or ``vars()``. ``proxy``
    is an HTTP proxy's URL (``http://[USER:PASSWORD@]HOST:PORT``), ``""`` for none, or None
    (the default) to read ``https_proxy``/``http_proxy``/``no_proxy`` from the environment as
    :mod:`urllib` does. The bounds take the command line's defaults and ranges
    (:mod:`hubasync.core.bounds`): ``timeout``, ``retries``, ``job_timeout`` and
    ``page_timeout`` in seconds, ``max_empty_pages``, and ``max_event_size``, which caps one
    event's size in bytes (a larger one raises :class:`~hubasync.errors.BodyTooLarge`); they
    are readable as ``client.bounds``.
    Arguments of a wrong type raise :class:`~hubasync.errors.InvalidArgumentType` (a
    ``TypeError``), wrong values :class:`~hubasync.errors.InvalidArgument` (a ``ValueError``),
    both naming the argument. Failures of a query raise :mod:`hubasync.errors` exceptions.
    """

    def __init__(self, url: str, apikey: Optional[str] = None,
                 timeout: float = DEFAULTS.timeout, retries: int = DEFAULTS.retries,
                 cacert: Optional[str] = None, allow_http: bool = False,
                 proxy: Optional[str] = None,
                 max_event_size: int = DEFAULTS.max_event_size,
                 job_timeout: float = DEFAULTS.job_timeout,
                 page_timeout: float = DEFAULTS.page_timeout,
                 max_empty_pages: int = DEFAULTS.max_empty_pages) -> None:
        if not isinstance(url, str):
            raise InvalidArgumentType(f"url must be a string, not {type(url).__name__}")
        if apikey is not None and not isinstance(apikey, str):
            raise InvalidArgumentType(f"apikey must be a string, not {type(apikey).__name__}")
        given = {"timeout": timeout, "retries": retries, "max_event_size": max_event_size,
                 "job_timeout": job_timeout, "page_timeout": page_timeout,
                 "max_empty_pages": max_empty_pages}
        checked: Dict[str, Any] = {
            name: BY_NAME[name].check(value, name, InvalidArgument, InvalidArgumentType)
            for name, value in given.items()}
        self.bounds = Bounds(**checked)
        if cacert is not None:
            if not isinstance(cacert, (str, os.PathLike)):
                raise InvalidArgumentType(f"cacert must be a path, not {type(cacert).__name__}")
            cacert = os.fspath(cacert)
            if not isinstance(cacert, str):
                raise InvalidArgumentType("cacert must be a path given as text")
            check_cacert(cacert, "cacert", InvalidArgument)
        if not isinstance(allow_http, bool):
            raise InvalidArgumentType(f"allow_http must be True or False, not "
                                      f"{type(allow_http).__name__}")
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int):
            raise InvalidArgumentType(f"max_event_size must be a whole number of bytes, not "
                                      f"{type(max_event_size).__name__}")
        if max_event_size < 1024:
            raise InvalidArgument(f"max_event_size must be at least 1024 bytes, not "
                                  f"{max_event_size}")
        if proxy is not None and not isinstance(proxy, str):
            raise InvalidArgumentType(f"proxy must be a URL, \"\" or None, not "
                                      f"{type(proxy).__name__}")
        if proxy:
            parse_proxy_url(proxy, "proxy")  # refused now, before any request
        share = parse_share_url(url)
        key = apikey or share.apikey or os.environ.get("APIKEY")
        if not key:
            raise UsageError("no API key: pass apikey= or set APIKEY")
        check_key_and_origin(share, key, allow_http=allow_http)
        self.url = redact(url)
        self.cacert = cacert
        self.allow_http = allow_http
        self._share = dataclasses.replace(share, apikey=None)
        self._key = Secret(key)
        self._proxy = Secret(proxy) if proxy else proxy

    def __repr__(self) -> str:
        return f"Client({self._share.display()!r})"

    def _revealed_proxy(self) -> Optional[str]:
        return self._proxy.reveal() if isinstance(self._proxy, Secret) else self._proxy

    def _session(self, count: bool) -> HubSession:
        # strict: every event is parsed on arrival, so a page never fails once handed out
        proxy = self._revealed_proxy()
        bounds = self.bounds
        transport = hub_transport(self._share.with_count(count), self._key.reveal(),
                                  timeout=bounds.timeout, cacert=self.cacert, proxy=proxy)
        return HubSession(transport, policy=RetryPolicy(retries=bounds.retries), strict=True,
                          job_timeout=bounds.job_timeout, page_timeout=bounds.page_timeout,
                          max_event_size=bounds.max_event_size)

    def count(self, *, start: Optional[str] = None, end: Optional[str] = None,
              filter: Optional[str] = None, params: Optional[Mapping[str, str]] = None,
              ) -> int:
        """How many events match the query."""
        query = _query(start, end, filter, None, None, False, params)
        query.check_for(self._share)
        session = self._session(count=True)
        try:
            job = session.job(query_url(self._share.with_count(True), query))
            return drive(session.count(job, session.attempts()), session.clock)
        finally:
            session.close()

    def pages(self, *, limit: Optional[int] = None, token: Optional[str] = None,
              start: Optional[str] = None, end: Optional[str] = None,
              filter: Optional[str] = None, projection: Union[str, Iterable[str], None] = None,
              sort: Optional[str] = None, reverse: bool = False,
              params: Optional[Mapping[str, str]] = None) -> Iterator[Page]:
        """The query's pages, each complete, with the token that continues after it.

        The arguments are checked when this is called, before the first page is asked for.
        """
        limit = _limit(limit)
        token = _text("token", token)
        query = _query(start, end, filter, projection, sort, reverse, params)
        query.check_for(self._share)
        return self._pages(query, limit, token)

    def _pages(self, query: Query, limit: Optional[int], token: Optional[str],
               ) -> Iterator[Page]:
        session = self._session(count=False)
        target = _SpoolTarget()

        def url_for(cursor: Cursor) -> str:
            return query_url(self._share, query, limit=cursor.page_limit, token=cursor.token)

        before = Cursor(token=token, limit=limit)
        steps = fetch_pages(session, url_for, before, target, attempts=session.attempts)
        try:
            for after in commits(steps, session.clock):
                spool, count = target.take()
                yield Page(spool, count, before.token, after.token, after.last_inserted)
                before = after
        finally:
            steps.close()
            session.close()

    def download(self, output: Union[str, os.PathLike[str]], *, state: Optional[str] = None,
                 format: str = "jsonl", existing: str = "refuse", limit: Optional[int] = None,
                 token: Optional[str] = None, start: Optional[str] = None,
                 end: Optional[str] = None, filter: Optional[str] = None,
                 projection: Union[str, Iterable[str], None] = None, sort: Optional[str] = None,
                 reverse: bool = False, params: Optional[Mapping[str, str]] = None,
                 ) -> Downloaded:
        """Download the query's events into the file ``output``, as the command does with
        ``-o``: ``format`` is ``jsonl``, ``json`` or ``csv``; with ``state`` (a path), the
        download is resumable exactly as ``--state`` makes it (run the same call again after
        any failure or crash, and it continues right after the last page written), one writer
        at a time (:class:`~hubasync.errors.Busy` otherwise). ``existing`` says what to do with
        an output that no state describes: ``"refuse"`` (a ``UsageError``), ``"append"`` (JSON
        lines) or ``"overwrite"``. Returns what this call wrote and the token that continues.
        """
        path = _path("output", output)
        state = None if state is None else _path("state", state)
        if format not in FORMATS:
            raise InvalidArgument(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        if existing not in EXISTING:
            raise InvalidArgument(f"existing must be one of {', '.join(EXISTING)}, not "
                                  f"{existing!r}")
        query = _query(start, end, filter, projection, sort, reverse, params)
        query.check_for(self._share)
        settings = RunSettings(share=self._share, apikey=self._key.reveal(), query=query,
                               limit=_limit(limit), token=_text("token", token), format=format,
                               output=path, state=state, strict=True, bounds=self.bounds,
                               cacert=self.cacert, proxy=self._revealed_proxy(),
                               existing=existing)
        run = ResumableRun(settings)
        run.claim()
        session = self._session(count=False)
        try:
            start_at = run.cursor
            if run.open():
                try:
                    for _ in commits(run.pages(session, attempts=session.attempts),
                                     session.clock):
                        pass
                    run.finish()
                except BaseException:
                    run.stop_early()
                    raise
            done = run.cursor
            events = done.events - (start_at.events if not start_at.done else 0)
            return Downloaded(events=max(0, events), pages=done.pages,
                              next_token=done.token if done.more else None)
        finally:
            session.close()
            run.release()

    def events(self, **query: Any) -> Iterator[Event]:
        """The query's events as dicts; takes the same keywords as :meth:`pages` (checked
        when this is called)."""
        return self._events(self.pages(**query))

    @staticmethod
    def _events(pages: Iterator[Page]) -> Iterator[Event]:
        for page in pages:
            try:
                yield from page
            finally:
                page.close()
