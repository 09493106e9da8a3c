"""The progress line: what it says, how often it is drawn, silence when disabled, and what the
terminal shows when other lines and the output share it (a small terminal emulator reads the
bytes: carriage return, line feed, characters overwriting what was there)."""

from __future__ import annotations

import io
import os
import select
from types import SimpleNamespace
from typing import Any, Iterator, Tuple

import pytest
from terminal import Screen

from hubasync.cli import messages
from hubasync.cli.progress import Progress, same_terminal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTerminal(io.StringIO):
    """A stream whose text also goes to a :class:`Screen`."""

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.screen = screen

    def write(self, text: str) -> int:
        self.screen.feed(text)
        return super().write(text)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> FakeTerminal:
    """stderr as a fake terminal: what messages.say prints lands on the same screen.

    ``messages`` reads ``sys.stderr`` when it prints; pytest sets its own ``sys.stderr`` again
    once the fixtures are set up, so it is the module's view of ``sys`` that is replaced.
    """
    stream = FakeTerminal(Screen())
    monkeypatch.setattr(messages, "sys", SimpleNamespace(stderr=stream))
    return stream


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


def test_disabled_progress_writes_nothing(terminal: FakeTerminal) -> None:
    stream = io.StringIO()
    progress = Progress(stream, enabled=False)
    with progress.attached():
        progress.update(5, 1, force=True)
        progress.note("up to date")
        progress.before_output()
        messages.say("a notice")
        progress.finish(5, 1)
        progress.clear()
    assert stream.getvalue() == ""
    assert terminal.screen.lines() == ["hubasync: a notice"]


def test_a_message_clears_the_line_before_it_is_printed(terminal: FakeTerminal) -> None:
    clock = Clock()
    progress = Progress(terminal, enabled=True, now=clock)
    with progress.attached():
        clock.now += 2
        progress.update(12_345, 3, force=True)
        progress.note("retry 2/6 in 1.5 s: cannot connect to hub.example.com:443: timed out")
        messages.say("the hub is slow")
    assert terminal.screen.lines() == ["hubasync: the hub is slow"]


def test_the_hook_is_removed_when_detached(terminal: FakeTerminal) -> None:
    progress = Progress(terminal, enabled=True, now=Clock())
    with progress.attached():
        pass
    progress.update(1, 1, force=True)
    messages.say("x")  # no longer cleared: glued to the line, as before the hook existed
    assert terminal.screen.lines() == [progress.line() + "hubasync: x"]


def test_finish_leaves_the_summary_then_the_token_is_the_last_line(
        terminal: FakeTerminal) -> None:
    clock = Clock()
    progress = Progress(terminal, enabled=True, now=clock)
    with progress.attached():
        clock.now += 3.1
        progress.update(24_000, 24, force=True)
        progress.finish(25_000, 25)
        written = terminal.getvalue()
        progress.update(26_000, 26, force=True)  # nothing is drawn after the summary
        progress.note("up to date")
        progress.finish(26_000, 26)  # once only
        assert terminal.getvalue() == written
        messages.say_line("TOKEN-123")
    assert terminal.screen.lines() == ["hubasync: 25,000 events in 25 pages, 0:03, 8.1k/s",
                                       "TOKEN-123"]


def test_summary_counts_in_the_singular_and_in_hours() -> None:
    clock = Clock()
    progress = Progress(io.StringIO(), enabled=True, now=clock)
    clock.now += 7322
    progress.update(1, 1)
    assert progress.summary() == "hubasync: 1 event in 1 page, 2:02:02, 0/s"
    progress.update(0, 0)
    assert progress.summary().startswith("hubasync: 0 events in 0 pages, ")


def test_a_long_line_is_cut_to_the_terminals_width(terminal: FakeTerminal) -> None:
    clock = Clock()
    progress = Progress(terminal, enabled=True, now=clock, columns=lambda: 40)
    clock.now += 1
    progress.update(1_000, 1, force=True)
    progress.note("retry 1/6 in 0.5 s: " + "a very long reason " * 10)
    drawn = terminal.getvalue().rsplit("\r", 1)[-1]
    assert len(drawn) == 39 and drawn.endswith("...")
    progress.update(2_000, 2, force=True)  # shorter: the rest of the long one is blanked
    assert terminal.screen.lines() == ["2,000 events, 2 pages, 2.0k/s, 0:01"]


# --- stdout on the same terminal (a real pseudo-terminal) ------------------------------------

@pytest.fixture
def pty_pair() -> Iterator[Tuple[int, str]]:
    if not hasattr(os, "openpty"):
        pytest.skip("no pseudo-terminals here")
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def read_screen(master: int, screen: Screen, until: str) -> None:
    """Feed what reached the terminal into ``screen`` until ``until`` has come."""
    received = ""
    while until not in received:
        ready, _, _ = select.select([master], [], [], 30)
        assert ready, f"the terminal never showed {until!r}: {received!r}"
        received += os.read(master, 65536).decode()
    screen.feed(received.replace(until, ""))


def test_same_terminal(pty_pair: Tuple[int, str], tmp_path: Any) -> None:
    _, name = pty_pair
    with open(name, "w") as out, open(name, "w") as err, open(tmp_path / "f", "w") as file:
        assert same_terminal(out, err)
        assert not same_terminal(file, err)
        assert not same_terminal(io.StringIO(), err)
        other_master, other_slave = os.openpty()
        try:
            with open(os.ttyname(other_slave), "w") as other:
                assert not same_terminal(other, err)
        finally:
            os.close(other_slave)
            os.close(other_master)


def test_output_on_the_same_terminal_is_never_overwritten(pty_pair: Tuple[int, str]) -> None:
    master, name = pty_pair
    screen = Screen()
    clock = Clock()
    with open(name, "w") as stdout, open(name, "w") as stderr:
        progress = Progress(stderr, enabled=True, now=clock, stdout=stdout)
        progress.update(0, 0, force=True)
        for page in range(2):
            progress.before_output()
            stdout.write(("[\n" if page == 0 else ",\n") + f'{{"page": {page}}}')
            stdout.flush()
            clock.now += 1
            progress.update(page + 1, page + 1, force=True)
        progress.before_output()
        stdout.write("\n]\n")
        stdout.flush()
        progress.finish()
        stdout.write("END")
        stdout.flush()
        read_screen(master, screen, "END")
    # the row breaks after each page are the screen's only: stdout holds the JSON as written
    assert screen.lines() == ["[", '{"page": 0}', ",", '{"page": 1}', "", "]",
                              "hubasync: 2 events in 2 pages, 0:02, 1/s"]


def test_output_on_another_stream_does_not_move_the_line(pty_pair: Tuple[int, str],
                                                          tmp_path: Any) -> None:
    master, name = pty_pair
    screen = Screen()
    with open(name, "w") as stderr, open(tmp_path / "out.json", "w") as stdout:
        clock = Clock()
        progress = Progress(stderr, enabled=True, now=clock, stdout=stdout)
        progress.update(1, 1, force=True)
        progress.before_output()  # stdout is a file: nothing to clear
        clock.now += 1
        progress.update(2, 2, force=True)
        stderr.write("END")
        stderr.flush()
        read_screen(master, screen, "END")
    assert screen.lines() == ["2 events, 2 pages, 2/s, 0:01"]
