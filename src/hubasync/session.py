"""One share, one key: the three phases of a query over the transport, with retries.

:class:`HubSession` posts a query, polls its job when it is likely done, fetches the results
once and streams them into a :class:`PageConsumer` as batches of raw event bytes. Transient
failures are retried through the one :class:`~hubasync.retry.Attempts` budget; a job that is
gone or a body that failed half-way makes it post the query again, after telling the
consumer to forget what it was given of that page.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from . import __version__
from .errors import BadBody, NetworkError, ProtocolError
from .polling import JobTiming, PollClock
from .protocol import (
    Answer,
    Fetch,
    Poll,
    Read,
    Repost,
    Retry,
    after_post,
    after_results,
    after_status,
    parse_count,
)
from .retry import Attempts, RetryPolicy
from .stream import DEFAULT_MAX_EVENT_SIZE, Batch, EventSplitter, make_decoder
from .transport import (
    SMALL_BODY_LIMIT,
    Exchange,
    Response,
    Trace,
    Transport,
    make_ssl_context,
    read_ahead,
)
from .urls import ShareUrl

USER_AGENT = f"hubasync/{__version__} (Python {sys.version_info[0]}.{sys.version_info[1]})"


@dataclass(frozen=True)
class PageHead:
    """What is known of a page once its results' headers have arrived."""

    token: Optional[str]  # the token the page was asked for with
    next_token: Optional[str]
    last_inserted_token: Optional[str]


@dataclass(frozen=True)
class PageResult(PageHead):
    """A page whose every event has been handed to the consumer."""

    events: int


class PageConsumer(Protocol):
    """Receives one page at a time; a page may be started again after a failure."""

    def page_started(self, head: PageHead) -> None: ...

    def page_events(self, batch: Batch) -> None: ...

    def page_failed(self) -> None:
        """Forget every event of the page in progress: it will be fetched again."""


@dataclass
class Prefetched:
    """A query sent ahead of time, whose answer is read when its page comes."""

    token: Optional[str]
    limit: Optional[int]
    exchange: Exchange


class _Gone(Exception):
    """The job went away; the query must be posted again."""


def _decoded(response: Response, limit: int = SMALL_BODY_LIMIT) -> bytes:
    """The whole small body of an answer, with its content encoding undone."""
    decoder = make_decoder(response.header("Content-Encoding"))
    parts: list[bytes] = []
    size = 0
    for piece in decoder.pieces(response.read_small(limit)):
        size += len(piece)
        if size > limit:
            raise BadBody(f"answer larger than {limit} bytes once decompressed")
        parts.append(piece)
    parts.append(decoder.finish())
    return b"".join(parts)


class HubSession:
    """The async API of one share, for one API key."""

    def __init__(self, share: ShareUrl, apikey: str, *, timeout: float, policy: RetryPolicy,
                 cacert: Optional[str] = None, trace: Optional[Trace] = None,
                 on_retry: Optional[Callable[[str, float, int], None]] = None,
                 sleep: Callable[[float], None] = time.sleep, strict: bool = False,
                 max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.share = share
        self.policy = policy
        self.strict = strict
        self.max_event_size = max_event_size
        self.clock = PollClock()
        self._on_retry = on_retry
        self._sleep = sleep
        headers = {
            "Authorization": f"token {apikey}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        context = make_ssl_context(cacert) if share.scheme == "https" else None
        self.transport = Transport(share.post_url, headers=headers, timeout=timeout,
                                   ssl_context=context, trace=trace)

    def attempts(self) -> Attempts:
        """A fresh failure budget for one unit of work."""
        return Attempts(self.policy, sleep=self._sleep, on_retry=self._on_retry)

    def close(self) -> None:
        self.transport.close()

    def send_query(self, url: str) -> Optional[Exchange]:
        """Send a query ahead of time; None if it could not even be sent."""
        try:
            return self.transport.send("POST", url)
        except NetworkError:
            return None

    def count(self, url: str) -> int:
        """The count a count query's results hold."""
        attempts = self.attempts()
        while True:
            try:
                response, _ = self._results_of(url, None, attempts)
                count = parse_count(_decoded(response))
            except (_Gone, BadBody, NetworkError) as error:
                attempts.failed(str(error))
                continue
            attempts.succeeded()
            return count

    def fetch_page(self, url: str, token: Optional[str], consumer: PageConsumer,
                   attempts: Attempts, *, max_events: Optional[int] = None,
                   prefetched: Optional[Exchange] = None,
                   send_next: Optional[Callable[[str], Optional[Prefetched]]] = None,
                   ) -> tuple[PageResult, Optional[Prefetched]]:
        """Fetch one page into ``consumer``; optionally send the next page's query early.

        ``send_next`` is called with the page's ``X-Next-Token`` as soon as the headers
        arrive, so the hub works on the next job while this page's body streams.
        """
        exchange = prefetched
        while True:
            upcoming: Optional[Prefetched] = None
            started = False
            try:
                response, read = self._results_of(url, exchange, attempts)
                exchange = None
                if send_next is not None and read.next_token is not None:
                    upcoming = send_next(read.next_token)
                head = PageHead(token, read.next_token, read.last_inserted_token)
                consumer.page_started(head)
                started = True
                count = self._stream(response, consumer, max_events)
            except (_Gone, BadBody, NetworkError) as error:
                exchange = None
                if upcoming is not None:
                    upcoming.exchange.cancel()
                if started:
                    consumer.page_failed()
                attempts.failed(str(error))
                continue
            attempts.succeeded()
            return PageResult(token, read.next_token, read.last_inserted_token, count), upcoming

    def _results_of(self, url: str, exchange: Optional[Exchange],
                    attempts: Attempts) -> tuple[Response, Read]:
        """Post (or take the posted) query, wait for its job, open its results."""
        status_url, posted_at = self._post(url, exchange, attempts)
        results_url = self._poll(status_url, posted_at, attempts)
        return self._open_results(results_url, attempts)

    def _answer(self, response: Response) -> Answer:
        """The answer with its small body read, unless the body is the results themselves."""
        return Answer(response.url, response.status, response.header, _decoded(response))

    def _post(self, url: str, exchange: Optional[Exchange],
              attempts: Attempts) -> tuple[str, float]:
        while True:
            try:
                if exchange is None:
                    exchange = self.transport.send("POST", url)
                posted_at = exchange.sent_at
                answer = self._answer(exchange.response())
            except (NetworkError, BadBody) as error:
                exchange = None
                attempts.failed(f"query: {error}")
                continue
            exchange = None
            outcome = after_post(answer)
            if isinstance(outcome, Retry):
                attempts.failed(outcome.reason, outcome.retry_after)
                continue
            return outcome.url, posted_at

    def _poll(self, status_url: str, posted_at: float, attempts: Attempts) -> str:
        when = posted_at + self.clock.first_delay()
        pending_at = 0.0
        pending_polls = 0
        while True:
            self._sleep_until(when)
            polled_at = time.monotonic()
            try:
                answer = self._answer(self.transport.request("GET", status_url))
            except (NetworkError, BadBody) as error:
                attempts.failed(f"status: {error}")
                when = 0.0
                continue
            outcome = after_status(answer)
            if isinstance(outcome, Poll):
                status_url = outcome.url
                pending_at = polled_at - posted_at
                pending_polls += 1
                wait = outcome.retry_after
                if wait is None:
                    wait = PollClock.wait_without_retry_after(pending_polls)
                else:
                    self.clock.retry_after = wait
                when = time.monotonic() + min(wait, self.policy.retry_after_max)
            elif isinstance(outcome, Fetch):
                self.clock.record(JobTiming(pending_at, polled_at - posted_at))
                return outcome.url
            elif isinstance(outcome, Retry):
                attempts.failed(outcome.reason, outcome.retry_after)
                when = 0.0
            else:
                raise _Gone(outcome.reason)

    def _open_results(self, results_url: str, attempts: Attempts) -> tuple[Response, Read]:
        while True:
            try:
                response = self.transport.request("GET", results_url)
                if response.status == 200:
                    answer = Answer(response.url, 200, response.header)
                else:
                    answer = self._answer(response)
            except (NetworkError, BadBody) as error:
                attempts.failed(f"results: {error}")
                continue
            outcome = after_results(answer)
            if isinstance(outcome, Read):
                return response, outcome
            if isinstance(outcome, Repost):
                raise _Gone(outcome.reason)
            attempts.failed(outcome.reason, outcome.retry_after)

    def _stream(self, response: Response, consumer: PageConsumer,
                max_events: Optional[int]) -> int:
        """Split the body into events as it arrives; gunzip runs ahead on another thread."""
        decoder = make_decoder(response.header("Content-Encoding"))
        splitter = EventSplitter(strict=self.strict, max_event_size=self.max_event_size)
        for data in read_ahead(response, decoder.pieces, decoder.finish):
            batch = splitter.feed_batch(data)
            if batch:
                if max_events is not None and splitter.count > max_events:
                    response.abandon()
                    raise ProtocolError(f"the hub sent more than the {max_events} events "
                                        "asked for")
                consumer.page_events(batch)
        splitter.finish()
        return splitter.count

    def _sleep_until(self, when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            self._sleep(delay)
