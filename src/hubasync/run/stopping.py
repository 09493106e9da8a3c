"""Stopping cleanly on SIGINT, SIGTERM and SIGHUP: signal handlers set flags, nothing more.

A signal handler runs between two bytecodes of the main thread, wherever it is, even inside a
lock or a write: so the handlers here only set an attribute and return (no logging, no lock, no
I/O, no exception). The work runs on another thread; the main thread *supervises* it
(:func:`supervise`): it notices a flag within :data:`WATCH_INTERVAL`, turns a stop signal into
a :class:`StopRequest` that the work checks between steps and that cuts its waits short, and,
if the work is still blocked on the network after a grace period, breaks its connections.

Who may touch what:

- :class:`SignalFlags`: ``stop`` and ``reopens`` are written only by the signal handlers, and
  read by the supervising thread.
- :class:`StopRequest`: set by the supervisor (or any thread: a test, the service); read and
  waited on by the threads doing the work; its aborts (``Transport.abort``) are registered by
  the work and called by the supervisor.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, TypeVar

from hubasync.core.clock import SystemClock
from hubasync.errors import Interrupted

T = TypeVar("T")

# SIGHUP exists on POSIX only
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))
# The service: SIGHUP reopens the outputs (after logrotate) instead of stopping.
SERVICE_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                             if hasattr(signal, name))
REOPEN_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP",) if hasattr(signal, name))
WATCH_INTERVAL = 0.1  # how soon the supervisor notices a flag
ABORT_GRACE = 3.0  # seconds the work gets to stop by itself before its connections are broken


class SignalFlags:
    """Signals turned into flags: ``stop`` (the name of the first stop signal) and ``reopens``
    (how many reopen signals came). Installed from the main thread only."""

    def __init__(self, stop_signals: tuple[int, ...] = STOP_SIGNALS,
                 reopen_signals: tuple[int, ...] = ()) -> None:
        self.stop: Optional[str] = None
        self.reopens = 0
        self._stop_signals = stop_signals
        self._reopen_signals = reopen_signals
        self._names = {int(signum): signal.Signals(signum).name
                       for signum in (*stop_signals, *reopen_signals)}
        self._previous: Dict[int, Any] = {}

    def install(self) -> bool:
        """Install the handlers; False (and nothing installed) off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in self._stop_signals:
            self._previous[signum] = signal.signal(signum, self._on_stop)
        for signum in self._reopen_signals:
            self._previous[signum] = signal.signal(signum, self._on_reopen)
        return True

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_stop(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.stop is None:
            self.stop = self._names.get(signum, str(signum))

    def _on_reopen(self, signum: int, frame: Optional[FrameType]) -> None:
        self.reopens += 1


class StopRequest:
    """A stop asked of the work in progress, by any thread; the work checks it between steps,
    and its sleeps end at once when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: Optional[str] = None
        self._aborts: List[Callable[[], None]] = []
        self._lock = threading.Lock()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str) -> None:
        """Ask the work to stop (never from a signal handler: it takes a lock)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a stop is asked."""
        return self._event.wait(max(0.0, seconds))

    def check(self) -> None:
        """Raise :class:`Interrupted` if a stop was asked."""
        if self._event.is_set():
            raise Interrupted(f"stopped by {self.reason}")

    def on_abort(self, abort: Callable[[], None]) -> None:
        """Register what breaks the work's blocking calls (a transport's ``abort``)."""
        with self._lock:
            self._aborts.append(abort)

    def abort(self) -> None:
        """Break the work's connections (after a grace period: see :func:`supervise`)."""
        with self._lock:
            aborts = list(self._aborts)
        for abort in aborts:
            abort()


class StoppableClock(SystemClock):
    """The system's clock, whose sleeps end at once, raising :class:`Interrupted`, when
    ``stop`` is set."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop

    def sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            self.stop.check()


def supervise(work: Callable[[], T], flags: SignalFlags, stop: StopRequest, *,
              on_reopen: Optional[Callable[[], None]] = None,
              on_stop: Optional[Callable[[str], None]] = None,
              grace: float = ABORT_GRACE) -> T:
    """Run ``work`` on a thread of its own while this (main) thread watches the flags.

    A stop signal sets ``stop`` (and calls ``on_stop`` with the signal's name, here, safely
    outside the handler); if the work has not ended ``grace`` seconds later, ``stop.abort()``
    breaks its connections. Each reopen signal calls ``on_reopen``. Returns what ``work``
    returned, or raises what it raised.
    """
    outcome: Dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the supervising thread
            outcome["error"] = error

    reopens = flags.reopens  # before the work starts: a signal it causes at once counts
    worker = threading.Thread(target=target, name="hubasync-work", daemon=True)
    worker.start()
    stopped_at: Optional[float] = None
    aborted = False
    while worker.is_alive():
        worker.join(WATCH_INTERVAL)
        if flags.stop is not None and stopped_at is None:
            stopped_at = time.monotonic()
            if on_stop is not None:
                on_stop(flags.stop)
            stop.set(flags.stop)
        if stopped_at is not None and not aborted and time.monotonic() - stopped_at > grace:
            aborted = True
            stop.abort()
        if flags.reopens != reopens:
            reopens = flags.reopens
            if on_reopen is not None:
                on_reopen()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
