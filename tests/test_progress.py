"""The progress line: what it says, how often it is drawn, and silence when disabled."""

from __future__ import annotations

import io

from hubasync.cli.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_shows_events_pages_rate_elapsed_and_total() -> None:
    clock = Clock()
    progress = Progress(io.StringIO(), enabled=True, now=clock)
    clock.now += 4
    progress.update(20_000, 2)
    assert progress.line() == "20,000 events, 2 pages, 5.0k/s, 0:04"
    progress.total = 80_000
    assert progress.line() == "20,000 / 80,000 events (25%), 2 pages, 5.0k/s, 0:04"
    clock.now += 3600
    progress.update(80_000, 1)
    assert progress.line().endswith("1 page, 22/s, 1:00:04")


def test_redraws_are_throttled_and_notes_shown_at_once() -> None:
    clock = Clock()
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, interval=0.2, now=clock)
    progress.update(1, 1)
    progress.update(2, 1)  # too soon: not drawn
    assert stream.getvalue().count("\r") == 1
    progress.note("retry 1/6 in 0.5 s: results: HTTP 503")
    assert stream.getvalue().endswith("retry 1/6 in 0.5 s: results: HTTP 503")
    clock.now += 1
    progress.update(3, 2)  # the counts moved: the note is gone
    assert "retry" not in stream.getvalue().rsplit("\r", 1)[-1]
    progress.clear()
    assert stream.getvalue().endswith("\r")


def test_disabled_progress_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=False)
    progress.update(5, 1, force=True)
    progress.note("up to date")
    progress.clear()
    assert stream.getvalue() == ""
