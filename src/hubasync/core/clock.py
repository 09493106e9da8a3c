"""Time as the orchestration sees it: a monotonic ``now`` and a ``sleep``, replaceable in tests,
and the :class:`Wait` a step of a run hands to whoever drives it instead of sleeping itself.

The run loop never blocks on time: when a status poll is not due yet, a retry must wait, or an
answer or a body's bytes have not arrived, it yields a :class:`Wait` and lets its driver decide
what to do meanwhile: the command sleeps (and notices a stop at once), the service gives the
worker to another share until the wait is over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Protocol


class Clock(Protocol):
    """What the run needs of time."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic`` and ``time.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclass(frozen=True)
class Wait:
    """A step of a run that has nothing to do yet.

    ``until`` is the monotonic time before which there is nothing to do (a poll not due, a retry
    backing off); None means the run waits for bytes from the hub (an answer, a page's body) and
    has already waited a short while for them: it may be resumed at once. ``why`` says what it
    waits for (``poll``, ``retry``, ``answer``, ``body``), for traces and tests.
    """

    until: Optional[float]
    why: str


# How long a run waits for bytes from the hub before handing a Wait to its driver.
IO_SLICE = 0.25
