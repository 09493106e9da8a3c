"""Stopping cleanly on SIGINT, SIGTERM and SIGHUP (a closed terminal).

A signal raises :class:`~hubasync.errors.Interrupted` where the program is, so that a run
blocked on the network stops at once, except inside a critical section (committing a page
and recording the state), where it is held until the section ends.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from types import FrameType
from typing import Any, Iterator, Optional

from hubasync.errors import Interrupted

# SIGHUP exists on POSIX only
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class Stopper:
    """Turns SIGINT, SIGTERM and SIGHUP into :class:`Interrupted`, deferred in critical
    sections."""

    def __init__(self) -> None:
        self.requested: Optional[str] = None
        self._critical = 0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.requested = signal.Signals(signum).name
        if self._critical == 0:
            raise Interrupted(f"stopped by {self.requested}")

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section that a signal must not cut in two."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if self._critical == 0 and self.requested is not None:
            raise Interrupted(f"stopped by {self.requested}")
