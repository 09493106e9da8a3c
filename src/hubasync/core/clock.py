"""Time as the orchestration sees it: a monotonic ``now`` and a ``sleep``, replaceable in tests."""

from __future__ import annotations

import time
from typing import Protocol


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


def sleep_until(clock: Clock, when: float) -> None:
    """Sleep until the monotonic time ``when`` (at once if it has passed)."""
    delay = when - clock.now()
    if delay > 0:
        clock.sleep(delay)
