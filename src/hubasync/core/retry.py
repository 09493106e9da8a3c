"""The one retry policy: how long to wait after a transient failure, and when to give up.

Every phase of a page (post, poll, fetch, body) reports its transient failures to the same
:class:`Attempts` budget, so "retries" means the same thing everywhere: the number of
failures tolerated in a row before the run ends with exit code 6. Which failures are transient
is the errors' own property (:mod:`hubasync.errors`); ``Retry-After`` is capped here, once.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable, Optional

from hubasync.core.bounds import DEFAULTS
from hubasync.errors import HubasyncError, HubUnavailable

RETRY_AFTER_MAX = 300.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    Returns None when the value is absent or cannot be understood; never a negative number.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text[0] in "0123456789.":
        try:
            seconds = float(text)
        except ValueError:
            return None
        return seconds if 0 <= seconds < float("inf") else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass
class RetryPolicy:
    """Which delay follows the n-th failure in a row, and how many failures end the run."""

    retries: int = DEFAULTS.retries
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = RETRY_AFTER_MAX
    rng: random.Random = field(default_factory=random.Random)

    def honoured(self, retry_after: float) -> float:
        """The wait the hub asked for, within the policy's cap: the one place it is capped."""
        return min(max(retry_after, 0.0), self.retry_after_max)

    def delay(self, failures: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based).

        The hub's ``Retry-After`` wins, capped; otherwise an exponential backoff with jitter
        (between half and all of the exponential step).
        """
        if retry_after is not None:
            return self.honoured(retry_after)
        step = min(self.backoff_max, self.backoff_base * (2.0 ** min(failures - 1, 30)))
        return step / 2 + self.rng.uniform(0, step / 2)


RetryNote = Callable[[str, float, int], None]


class Attempts:
    """Counts the transient failures of one unit of work (a page, a count) in a row."""

    def __init__(self, policy: RetryPolicy, on_retry: Optional[RetryNote] = None) -> None:
        self.policy = policy
        self.failures = 0
        self._on_retry = on_retry
        self._reasons: dict[str, int] = {}

    def failed(self, error: HubasyncError) -> float:
        """Record a failure: re-raise it unless it is transient, or give up; else return the
        seconds to wait before trying again (the caller waits: it may have better to do).

        Raises :class:`HubUnavailable` once more than ``retries`` failures came in a row,
        saying what failed and how often.
        """
        if not error.transient:
            raise error
        reason = str(error)
        self.failures += 1
        self._reasons[reason] = self._reasons.get(reason, 0) + 1
        if self.failures > self.policy.retries:
            raise HubUnavailable(
                f"gave up after {self.failures} failed attempts ({self.summary()})"
            ) from error
        wait = self.policy.delay(self.failures, error.retry_after)
        if self._on_retry is not None:
            self._on_retry(reason, wait, self.failures)
        return wait

    def succeeded(self) -> None:
        """The unit of work went through: the next failure is the first again."""
        self.failures = 0
        self._reasons.clear()

    def summary(self) -> str:
        return ", ".join(
            f"{reason} x{count}" if count > 1 else reason for reason, count in self._reasons.items()
        )
