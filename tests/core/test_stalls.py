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
    memory = stalls.memory()
    assert len(memory["tokens"]) == 999 and len(memory["pages"]) == 1000  # all remembered
    assert memory["empty_pages"] == 0


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
        assert stalls.memory()["empty_pages"] == (0 if events else 1)
    stalls.check("T10", "T11", 0, (0, "", ""))
    stalls.check("T11", "T12", 0, (0, "", ""))  # two in a row: at the bound, not past it
    with pytest.raises(NoProgress):
        stalls.check("T12", "T13", 0, (0, "", ""))


def test_the_same_events_under_new_tokens_are_stopped() -> None:
    stalls = StallDetector()
    stalls.check(None, "T1", 5, (5, b"{first", b"last}"))
    with pytest.raises(NoProgress, match="same events"):
        stalls.check("T1", "T2", 5, (5, b"{first", b"last}"))


def test_memory_is_bounded() -> None:
    stalls = StallDetector(remembered=10)
    for n in range(100):
        stalls.check(f"T{n}", f"T{n + 1}", 1, (1, str(n), str(n)))
    assert len(stalls.memory()["tokens"]) == 10 and len(stalls.memory()["pages"]) == 10
    stalls.check("T100", "T0", 1, (1, "new", "new"))  # forgotten long ago: not a circle seen
    with pytest.raises(NoProgress, match="circle"):
        stalls.check("T0", "T95", 1, (1, "newer", "newer"))  # still remembered


def test_the_memory_goes_on_after_a_restart() -> None:
    first = StallDetector(max_empty_pages=5)
    first.check(None, "A", 1, (1, "a", "a"))
    first.check("A", "B", 0, (0, "", ""))
    first.check("B", "C", 0, (0, "", ""))
    again = StallDetector.restored(first.memory(), 5)
    assert again.memory() == first.memory()
    with pytest.raises(NoProgress, match="circle"):
        again.check("C", "A", 1, (1, "c", "c"))
    with pytest.raises(NoProgress, match="same events"):
        StallDetector.restored(first.memory(), 5).check("C", "D", 1, (1, "a", "a"))
    bounded = StallDetector.restored(first.memory(), 3)
    bounded.check("C", "D", 0, (0, "", ""))
    with pytest.raises(NoProgress, match="--max-empty-pages"):
        bounded.check("D", "E", 0, (0, "", ""))


def test_a_page_that_fails_the_check_leaves_the_memory_as_it_was() -> None:
    stalls = StallDetector(max_empty_pages=1)
    stalls.check(None, "A", 0, (0, "", ""))
    before = stalls.memory()
    with pytest.raises(NoProgress):
        stalls.check("A", "B", 0, (0, "", ""))
    assert stalls.memory()["empty_pages"] == before["empty_pages"] == 1
