"""When to ask a job's status for the first time, learnt from the jobs seen so far.

A status poll that comes too early costs the hub's ``Retry-After`` (often a whole second);
one that comes too late wastes the time in between, page after page. The clock keeps, for the
jobs seen so far, the latest moment a job was still running (``lower``) and the earliest moment
one was seen done (``upper``), measured from the moment its query was sent.

Polling ``x`` seconds before ``upper``, with the job's end anywhere between the bounds, is
early with a chance of ``x / span``. Counting what a poll that comes in time saves on the next
:data:`HORIZON` pages against the ``Retry-After`` an early one costs, the best ``x`` is
``span / 2 - retry_after / (2 * HORIZON)``: halve the span while it is wide, and once it is
narrower than ``retry_after / HORIZON``, poll where jobs have been seen done (plus a small margin
for jitter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

FIRST_GUESS = 0.0
HORIZON = 10  # pages over which a better first poll is expected to pay off
MARGIN = 0.05  # at the upper bound, poll this share later, for the jobs' jitter
DEFAULT_RETRY_AFTER = 1.0
NO_RETRY_AFTER_STEPS = (0.1, 0.2, 0.4, 0.8)
NO_RETRY_AFTER_MAX = 1.0


@dataclass(frozen=True)
class JobTiming:
    """What was seen of one job, in seconds after its query was sent."""

    lower: float  # last moment it was seen running (0 if never)
    upper: float  # first moment it was seen done


class PollPlanner:
    """Chooses the delay before a job's first status poll."""

    def __init__(self, first_guess: float = FIRST_GUESS) -> None:
        self._first_guess = first_guess
        self._lower = 0.0
        self._upper: Optional[float] = None
        self.retry_after = DEFAULT_RETRY_AFTER  # what an early poll costs, as last seen

    def first_delay(self) -> float:
        """Seconds after sending the query at which to poll first."""
        upper = self._upper
        if upper is None:
            return self._first_guess
        below = (upper - self._lower) / 2 - self.retry_after / (2 * HORIZON)
        if below <= 0:
            return upper * (1 + MARGIN)
        return upper - below

    def record(self, timing: JobTiming) -> None:
        """Learn from a finished job; one that does not fit the bounds starts them anew."""
        if self._upper is None:
            self._lower, self._upper = timing.lower, timing.upper
            return
        lower = max(self._lower, timing.lower)
        upper = min(self._upper, timing.upper)
        if lower > upper:
            lower, upper = timing.lower, timing.upper
        self._lower, self._upper = lower, upper

    @staticmethod
    def wait_without_retry_after(polls: int) -> float:
        """The wait after the ``polls``-th pending answer that had no ``Retry-After``."""
        if polls <= len(NO_RETRY_AFTER_STEPS):
            return NO_RETRY_AFTER_STEPS[polls - 1]
        return NO_RETRY_AFTER_MAX

