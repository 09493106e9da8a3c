"""Pages that do not move a run forward are stopped, in bounded memory."""

from __future__ import annotations

import pytest

from hubasync.core.stalls import StallDetector
from hubasync.errors import NoProgress


def test_pages_that_move_forward_pass() -> None:
    stalls = StallDetector()
    for n in range(1000):
        stalls.check(f"T{n}" if n else None, f"T{n + 1}", 10, (10, f"a{n}", f"z{n}"))
    stalls.check("T1000", None, 3, (3, "x", "y"))


def test_the_same_token_again_is_stopped() -> None:
    with pytest.raises(NoProgress, match="same X-Next-Token"):
        StallDetector().check("T1", "T1", 10, (10, "a", "z"))


def test_tokens_in_a_circle_are_stopped() -> None:
    stalls = StallDetector()
    stalls.check(None, "A", 1, (1, "a", "a"))
    stalls.check("A", "B", 1, (1, "b", "b"))
    stalls.check("B", "C", 1, (1, "c", "c"))
    with pytest.raises(NoProgress, match="circle"):
        stalls.check("C", "A", 1, (1, "d", "d"))


def test_endless_empty_pages_are_stopped_at_the_bound() -> None:
    stalls = StallDetector(max_empty_pages=3)
    for n in range(3):
        stalls.check(f"T{n}", f"T{n + 1}", 0, (0, b"", b""))
    with pytest.raises(NoProgress, match="--max-empty-pages"):
        stalls.check("T3", "T4", 0, (0, b"", b""))


def test_an_event_resets_the_empty_count() -> None:
    stalls = StallDetector(max_empty_pages=2)
    for n in range(10):
        events = 1 if n % 2 else 0
        stalls.check(f"T{n}", f"T{n + 1}", events, (events, str(n), str(n)))


def test_the_same_events_under_new_tokens_are_stopped() -> None:
    stalls = StallDetector()
    stalls.check(None, "T1", 5, (5, b"{first", b"last}"))
    with pytest.raises(NoProgress, match="same events"):
        stalls.check("T1", "T2", 5, (5, b"{first", b"last}"))


def test_memory_is_bounded() -> None:
    stalls = StallDetector(remembered=10)
    for n in range(100):
        stalls.check(f"T{n}", f"T{n + 1}", 1, (1, str(n), str(n)))
    stalls.check("T100", "T0", 1, (1, "new", "new"))  # forgotten long ago: not a circle seen
