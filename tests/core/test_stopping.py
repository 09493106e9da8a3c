"""Signals are flags: a storm of them breaks nothing, a stop reaches the work between its steps,
and work blocked on the network is broken after a grace period."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import List

import pytest

from hubasync.core.clock import Wait
from hubasync.errors import Interrupted
from hubasync.run.driving import drive
from hubasync.run.stopping import SignalFlags, StoppableClock, StopRequest, supervise

STOP, REOPEN = signal.SIGUSR1, signal.SIGUSR2


def test_a_storm_of_signals_only_counts_and_a_stop_still_stops() -> None:
    flags = SignalFlags(stop_signals=(STOP,), reopen_signals=(REOPEN,))
    stop = StopRequest()
    reopened = threading.Event()
    assert flags.install()
    try:
        def work() -> str:
            for _ in range(1000):
                os.kill(os.getpid(), REOPEN)
            assert reopened.wait(30), "the reopen never reached the supervisor"
            os.kill(os.getpid(), STOP)
            assert stop.wait(30), "the stop never came"
            return "stopped"

        assert supervise(work, flags, stop, on_reopen=reopened.set) == "stopped"
    finally:
        flags.uninstall()
    assert 1 <= flags.reopens <= 1000  # pending signals of a kind may merge
    assert flags.stop == "SIGUSR1" and stop.reason == "SIGUSR1"


def test_the_handlers_set_flags_and_nothing_else() -> None:
    flags = SignalFlags(stop_signals=(STOP,), reopen_signals=(REOPEN,))
    flags._on_stop(int(STOP), None)
    flags._on_stop(int(signal.SIGUSR2), None)  # a second stop keeps the first one's name
    flags._on_reopen(int(REOPEN), None)
    assert (flags.stop, flags.reopens) == ("SIGUSR1", 1)


def test_work_blocked_past_the_grace_period_is_broken() -> None:
    flags = SignalFlags(stop_signals=(STOP,), reopen_signals=())
    stop = StopRequest()
    unblocked = threading.Event()
    stop.on_abort(unblocked.set)  # as Transport.abort breaks a socket read
    assert flags.install()
    try:
        def work() -> float:
            os.kill(os.getpid(), STOP)
            started = time.monotonic()
            assert unblocked.wait(30), "never broken"  # blocked, deaf to the stop request
            return time.monotonic() - started

        waited = supervise(work, flags, stop, grace=0.2)
    finally:
        flags.uninstall()
    assert waited >= 0.2


def test_what_the_work_raises_reaches_the_caller() -> None:
    flags = SignalFlags(stop_signals=(STOP,))

    def work() -> None:
        raise Interrupted("stopped by a test")

    with pytest.raises(Interrupted):
        supervise(work, flags, StopRequest())


def test_a_stop_ends_a_wait_at_once_and_closes_the_steps() -> None:
    stop = StopRequest()
    closed: List[bool] = []

    def steps():  # type: ignore[no-untyped-def]
        try:
            yield Wait(time.monotonic() + 3600, "poll")
            yield Wait(None, "body")
        finally:
            closed.append(True)

    threading.Timer(0.1, stop.set, args=("SIGTERM",)).start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="stopped by SIGTERM"):
        drive(steps(), StoppableClock(stop), stop)
    assert time.monotonic() - started < 10 and closed == [True]
