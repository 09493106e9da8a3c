"""One query's job, from its POST to its results, as a sequence of requests: no sockets here.

The job says which request comes next and when (:meth:`Job.next_request`), and is fed each
answer (:meth:`Job.receive`), as h11 is fed bytes. It knows the phase it is in, so whoever drives
it can retry after any failure by simply asking for the next request again: a failed status poll
is polled again, a failed POST posted again, and a job whose results were opened but not read to
the end is posted anew (results can be fetched only once). Answers that need another attempt raise
transient errors (:class:`~hubasync.errors.HubBusy`, :class:`~hubasync.errors.JobGone`); the
caller's :class:`~hubasync.retry.Attempts` decides whether and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NoReturn, Optional, Union

from hubasync.core.answers import (
    Answer,
    Fetch,
    Poll,
    Read,
    Repost,
    Retry,
    after_post,
    after_results,
    after_status,
)
from hubasync.core.bounds import DEFAULTS
from hubasync.core.polling import JobTiming, PollPlanner
from hubasync.core.retry import RetryPolicy
from hubasync.errors import HubBusy, JobGone, JobTimeout


class JobPhase(Enum):
    """Where a job stands: its query to post, its status to poll, its results to fetch, or its
    results open (their body being read)."""

    QUERY = "query"
    STATUS = "status"
    RESULTS = "results"
    OPEN = "open"


QUERY, STATUS, RESULTS, OPEN = JobPhase.QUERY, JobPhase.STATUS, JobPhase.RESULTS, JobPhase.OPEN


@dataclass(frozen=True)
class Request:
    """What to send next: ``method`` on ``url``, not before the monotonic time ``at``."""

    method: str
    url: str
    at: float
    phase: JobPhase


class Job:
    """The three phases of one query: POST, status polls, results."""

    def __init__(self, query_url: str, *, planner: PollPlanner, policy: RetryPolicy,
                 job_timeout: float = DEFAULTS.job_timeout) -> None:
        self.query_url = query_url
        self.phase = QUERY
        self._planner = planner
        self._policy = policy
        self._job_timeout = job_timeout
        self._url = query_url
        self._at = 0.0
        self._posted_at = 0.0
        self._accepted_at = 0.0
        self._pending_at = 0.0
        self._pending_polls = 0

    def next_request(self) -> Request:
        """The request to send now or later; asked again after a failure, it retries."""
        if self.phase == OPEN:  # the body failed: its results cannot be fetched again
            self._restart()
        method = "POST" if self.phase == QUERY else "GET"
        return Request(method, self._url, self._at, self.phase)

    def receive(self, answer: Answer, *, sent_at: float, now: float) -> Optional[Read]:
        """Take the answer to the last request (sent at ``sent_at``, answered at ``now``).

        Returns the results' :class:`Read` once they are open, else None (ask for the next
        request). Raises transient errors for answers worth another attempt, and the errors
        of :mod:`hubasync.protocol` for answers that end the run.
        """
        if self.phase == QUERY:
            self._after_post(answer, sent_at, now)
            return None
        if self.phase == STATUS:
            self._after_status(answer, sent_at, now)
            return None
        outcome = after_results(answer)
        if isinstance(outcome, Read):
            self.phase = OPEN
            return outcome
        self._setback(outcome)

    def _after_post(self, answer: Answer, sent_at: float, now: float) -> None:
        outcome = after_post(answer)
        if isinstance(outcome, Retry):
            raise HubBusy(outcome.reason, outcome.retry_after)
        self.phase, self._url = STATUS, outcome.url
        self._posted_at = sent_at
        self._accepted_at = now
        self._pending_at = 0.0
        self._pending_polls = 0
        self._at = sent_at + self._planner.first_delay()

    def _after_status(self, answer: Answer, polled_at: float, now: float) -> None:
        outcome = after_status(answer)
        if isinstance(outcome, Poll):
            self._pending(outcome, polled_at, now)
        elif isinstance(outcome, Fetch):
            self._planner.record(JobTiming(self._pending_at, polled_at - self._posted_at))
            self.phase, self._url, self._at = RESULTS, outcome.url, 0.0
        else:
            self._setback(outcome)

    def _pending(self, outcome: Poll, polled_at: float, now: float) -> None:
        if now - self._accepted_at > self._job_timeout:
            raise JobTimeout(
                f"the hub kept the job pending for more than {self._job_timeout:g} s "
                "(--job-timeout)"
            )
        self._url = outcome.url
        self._pending_at = polled_at - self._posted_at
        self._pending_polls += 1
        wait = outcome.retry_after
        if wait is None:
            wait = PollPlanner.wait_without_retry_after(self._pending_polls)
        else:
            self._planner.retry_after = wait
        self._at = now + self._policy.honoured(wait)

    def _setback(self, outcome: Union[Retry, Repost]) -> NoReturn:
        """A transient answer: stay in this phase (Retry) or start the job anew (Repost)."""
        self._at = 0.0
        if isinstance(outcome, Repost):
            self._restart()
            raise JobGone(outcome.reason)
        raise HubBusy(outcome.reason, outcome.retry_after)

    def _restart(self) -> None:
        self.phase, self._url, self._at = QUERY, self.query_url, 0.0
