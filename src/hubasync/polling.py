"""When to ask a job's status for the first time, learnt from the jobs seen so far.

A status poll that comes too early costs the hub's ``Retry-After`` (often a whole second);
one that comes too late wastes the time in between. The clock remembers, for recent jobs,
the latest moment a job was still running (``lower``) and the earliest moment it was seen
done (``upper``), measured from the moment its query was sent. It polls at the upper bound,
shrinking it while the polls keep finding jobs done, and stops shrinking once a poll has come
too early, so that early polls (each costing a ``Retry-After``) stay rare.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque

FIRST_GUESS = 0.05
SHRINK = 0.8
WINDOW = 5
NO_RETRY_AFTER_STEPS = (0.1, 0.2, 0.4, 0.8)
NO_RETRY_AFTER_MAX = 1.0


@dataclass(frozen=True)
class JobTiming:
    """What was seen of one job, in seconds after its query was sent."""

    lower: float  # last moment it was seen running (0 if never)
    upper: float  # first moment it was seen done


class PollClock:
    """Chooses the delay before a job's first status poll."""

    def __init__(self, first_guess: float = FIRST_GUESS) -> None:
        self._first_guess = first_guess
        self._jobs: Deque[JobTiming] = deque(maxlen=WINDOW)
        self._early = False

    def first_delay(self) -> float:
        """Seconds after sending the query at which to poll first."""
        if not self._jobs:
            return self._first_guess
        upper = min(job.upper for job in self._jobs)
        lower = max(job.lower for job in self._jobs)
        if self._early:
            return max(upper, lower)
        return max(lower, upper * SHRINK)

    def record(self, timing: JobTiming) -> None:
        """Learn from a finished job."""
        if timing.lower > 0 and self._jobs:
            self._early = True
        self._jobs.append(timing)

    @staticmethod
    def wait_without_retry_after(polls: int) -> float:
        """The wait after the ``polls``-th pending answer that had no ``Retry-After``."""
        if polls <= len(NO_RETRY_AFTER_STEPS):
            return NO_RETRY_AFTER_STEPS[polls - 1]
        return NO_RETRY_AFTER_MAX

