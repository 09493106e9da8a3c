"""One share, one key: the requests of each :class:`~hubasync.core.job.Job`, over a transport.

:class:`HubSession` drives a job (waiting until each request is due, sending it, reading the
small body of every answer but the results) until its results open, and hands them back as a
:class:`~hubasync.transport.body.PageStream`; it never sleeps itself, but yields a
:class:`~hubasync.core.clock.Wait` to whoever drives it. It retries nothing itself: a failure
propagates to the run loop, which decides, and asks again; the job remembers its phase, so
asking again retries.
"""

from __future__ import annotations

from typing import Callable, Generator, Optional, TypeVar

from hubasync.core.answers import Answer, Read, parse_count
from hubasync.core.bounds import DEFAULTS
from hubasync.core.clock import IO_SLICE, Clock, SystemClock, Wait
from hubasync.core.job import RESULTS, Job
from hubasync.core.polling import PollPlanner
from hubasync.core.retry import Attempts, RetryNote, RetryPolicy
from hubasync.errors import BadBody, HubasyncError, NetworkError
from hubasync.events.decoding import make_decoder
from hubasync.transport.body import PageStream
from hubasync.transport.http import SMALL_BODY_LIMIT
from hubasync.transport.interface import Exchange, Response, Transport

Trace = Callable[[str], None]
T = TypeVar("T")


def small_body(response: Response, limit: int = SMALL_BODY_LIMIT) -> bytes:
    """The whole small body of an answer (an error, a count), its content encoding undone."""
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


Steps = Generator[Wait, None, T]


class HubSession:
    """The async API of one share, over one transport.

    Its methods are generators of steps: they yield a :class:`~hubasync.core.clock.Wait`
    whenever there is nothing to do yet (a poll not due, an answer not arrived) and return their
    result; ``yield from`` them, or drive them with :func:`hubasync.run.driving.drive`.
    """

    def __init__(self, transport: Transport, *, policy: Optional[RetryPolicy] = None,
                 clock: Optional[Clock] = None, job_timeout: float = DEFAULTS.job_timeout,
                 page_timeout: Optional[float] = DEFAULTS.page_timeout,
                 strict: bool = False, max_event_size: int = DEFAULTS.max_event_size) -> None:
        self.transport = transport
        self.policy = policy or RetryPolicy()
        self.clock: Clock = clock or SystemClock()
        self.poll_planner = PollPlanner()
        self.job_timeout = job_timeout
        self.page_timeout = page_timeout
        self.strict = strict
        self.max_event_size = max_event_size

    def job(self, query_url: str) -> Job:
        """A new job for the query at ``query_url``."""
        return Job(query_url, planner=self.poll_planner, policy=self.policy,
                   job_timeout=self.job_timeout)

    def attempts(self, on_retry: Optional[RetryNote] = None) -> Attempts:
        """A fresh failure budget for one unit of work."""
        return Attempts(self.policy, on_retry=on_retry)

    def close(self) -> None:
        self.transport.close()

    def send_ahead(self, query_url: str) -> Optional[Exchange]:
        """Post a query before its page is due; None if it could not even be sent."""
        try:
            return self.transport.send("POST", query_url)
        except NetworkError:
            return None

    def open_page(self, job: Job, token: Optional[str], *, max_events: Optional[int] = None,
                  sent: Optional[Exchange] = None) -> Steps[PageStream]:
        """Carry ``job`` on until its results open; ``sent`` is its POST, if already sent."""
        response, read = yield from self._results(job, sent)
        deadline = None if self.page_timeout is None else self.clock.now() + self.page_timeout
        return PageStream(response, token, read, clock=self.clock, deadline=deadline,
                          max_events=max_events, strict=self.strict,
                          max_event_size=self.max_event_size)

    def count(self, job: Job, attempts: Attempts) -> Steps[int]:
        """The count a count query's results hold."""
        while True:
            try:
                response, _ = yield from self._results(job, None)
                count = parse_count(small_body(response))
            except HubasyncError as error:
                wait = attempts.failed(error)  # raises it again unless it is transient
                if wait > 0:
                    yield Wait(self.clock.now() + wait, "retry")
                continue
            attempts.succeeded()
            return count

    def _results(self, job: Job, sent: Optional[Exchange]) -> Steps[tuple[Response, Read]]:
        while True:
            request = job.next_request()
            if sent is None:
                if request.at > self.clock.now():
                    yield Wait(request.at, "poll")
                exchange = self.transport.send(request.method, request.url)
            else:
                exchange, sent = sent, None
            while not exchange.ready(IO_SLICE):
                yield Wait(None, "answer")
            response = exchange.response()
            if request.phase == RESULTS and response.status == 200:
                answer = Answer(response.url, 200, response.header)
            else:
                answer = Answer(response.url, response.status, response.header,
                                small_body(response))
            read = job.receive(answer, sent_at=exchange.sent_at, now=self.clock.now())
            if read is not None:
                return response, read
