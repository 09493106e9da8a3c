"""The cursor: the one owner of where a run stands."""

from __future__ import annotations

import pytest

from hubasync.core.cursor import Cursor, PageResult
from hubasync.errors import ProtocolError


def page(events: int, next_token: str | None, last: str | None = "L") -> PageResult:
    return PageResult("asked", next_token, last, events)


def test_advance_follows_the_tokens_and_counts() -> None:
    cursor = Cursor().advance(page(10, "T1")).advance(page(10, "T2", None))
    assert (cursor.token, cursor.events, cursor.pages, cursor.last_inserted) == ("T2", 20, 2, "L")
    assert not cursor.done
    end = cursor.advance(page(3, None, "L2"))
    assert (end.token, end.done, end.more, end.events) == (None, True, False, 23)
    assert end.last_inserted == "L2"


def test_the_limit_is_split_into_pages_and_never_exceeded() -> None:
    cursor = Cursor(limit=250_000)
    assert cursor.page_limit == 100_000
    cursor = cursor.advance(page(100_000, "T1")).advance(page(100_000, "T2"))
    assert cursor.remaining == 50_000 and cursor.page_limit == 50_000
    last = cursor.advance(page(50_000, "T3"))
    assert (last.done, last.more, last.token) == (True, True, "T3")


def test_no_limit_asks_for_no_limit() -> None:
    assert Cursor().page_limit is None and Cursor().remaining is None


def test_ahead_is_where_the_next_page_starts_if_this_one_is_full() -> None:
    ahead = Cursor(limit=150_000).ahead("T1")
    assert ahead is not None and (ahead.token, ahead.page_limit) == ("T1", 50_000)
    assert Cursor(limit=100).ahead("T1") is None  # the page being read is the last wanted
    unlimited = Cursor().ahead("T1")
    assert unlimited is not None and unlimited.page_limit is None


def test_starting_at_the_limit_is_done_at_once() -> None:
    cursor = Cursor(token="T", limit=10, events=10).starting()
    assert cursor.done and cursor.more
    assert not Cursor(limit=10).starting().done


def test_next_pass_goes_on_from_the_newest_insertion() -> None:
    caught_up = Cursor(limit=5).advance(page(3, None, "L9"))
    again = caught_up.next_pass()
    assert (again.token, again.events, again.done, again.pages) == ("L9", 0, False, 1)
    limited = Cursor(limit=3).advance(page(3, "T4", "L9"))
    assert limited.more and limited.next_pass().token == "T4"  # the events left first


def test_next_pass_without_the_newest_insertion_cannot_follow() -> None:
    with pytest.raises(ProtocolError):
        Cursor().advance(page(3, None, None)).next_pass()
    empty = Cursor().advance(page(0, None, None)).next_pass()
    assert empty.token is None and not empty.done  # an empty share: from the start again
