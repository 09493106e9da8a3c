"""The live progress line on stderr (events, pages, rate, elapsed, total), and the run's summary.

The line is drawn with a carriage return and no line break, so whatever else reaches the
terminal must clear it first, or the two run together. Three writers share the terminal:

- the lines of :mod:`hubasync.cli.messages` (notices, errors, ``--debug`` traces, the token):
  while a :class:`Progress` is :meth:`~Progress.attached`, every one of them clears the line
  first (a hook of ``messages``);
- the output, when stdout is the same terminal: the run loop calls
  :meth:`Progress.before_output` before each write to stdout; the line is cleared, and drawn
  again on a row of its own, never over the output's last line (the screen may show a row
  break the output does not hold: stdout's bytes are untouched);
- the line itself, fitted to the terminal's width so that a redraw always covers the last one.

At the end of a run that showed the line, :meth:`Progress.finish` replaces it with the summary
(``hubasync: 25,000 events in 25 pages, 0:03, 8.1k/s``), before the token line, which stays the
last line of stderr. A disabled progress (a pipe, cron, ``--quiet``) writes nothing at all.

Threads: a ``Progress`` is used by the run's own thread only (the read-ahead thread never
draws); a signal handler never touches it.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, TextIO

from hubasync.cli import messages
from hubasync.version import PROG

DEFAULT_COLUMNS = 80


def _human(number: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return f"{number:.0f}"


def _elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _fd(stream: object) -> Optional[int]:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


def _terminal_columns(stream: TextIO) -> int:
    """The width of the terminal ``stream`` writes to (80 when it cannot be known)."""
    fd = _fd(stream)
    if fd is not None:
        try:
            return os.get_terminal_size(fd).columns or DEFAULT_COLUMNS
        except OSError:
            pass
    return DEFAULT_COLUMNS


def same_terminal(first: object, second: object) -> bool:
    """Whether two streams are the same terminal (stdout and stderr both on the screen)."""
    fds = _fd(first), _fd(second)
    if fds[0] is None or fds[1] is None:
        return False
    try:
        if not (os.isatty(fds[0]) and os.isatty(fds[1])):
            return False
        return os.fstat(fds[0]).st_rdev == os.fstat(fds[1]).st_rdev
    except OSError:
        return False


class Progress:
    """Redraws one status line at most a few times a second; silent when disabled.

    ``stdout`` is the stream the output goes to when it is standard output; it is only looked
    at to know whether it shares the terminal with ``stream``.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, interval: float = 0.2,
                 now: Callable[[], float] = time.monotonic,
                 stdout: Optional[object] = None,
                 columns: Optional[Callable[[], int]] = None) -> None:
        self.enabled = enabled
        self.total: Optional[int] = None
        self._stream = stream
        self._interval = interval
        self._now = now
        self._columns = columns or (lambda: _terminal_columns(stream))
        self._shares_terminal = enabled and stdout is not None and same_terminal(stdout, stream)
        self._started = now()
        self._drawn_at = 0.0
        self._width = 0
        self._events = 0
        self._pages = 0
        self._note = ""
        self._output_since_drawn = False
        self._finished = False

    def update(self, events: int, pages: int, *, force: bool = False) -> None:
        """New counts; the note (a retry, "up to date") lasts until the counts move."""
        if (events, pages) != (self._events, self._pages):
            self._note = ""
        self._events, self._pages = events, pages
        self._redraw(force)

    def note(self, text: str) -> None:
        """Show ``text`` after the counts at once (e.g. ``retry 2/6 in 1.5 s: REASON``)."""
        self._note = text
        self._redraw(True)

    def _redraw(self, force: bool) -> None:
        if not self.enabled or self._finished:
            return
        now = self._now()
        if force or now - self._drawn_at >= self._interval:
            self._drawn_at = now
            self._draw(self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        """The status line as it would be drawn now (before it is fitted to the terminal)."""
        elapsed = self._elapsed(now)
        if self.total is not None:
            share = 100.0 * self._events / self.total if self.total else 100.0
            done = f"{self._events:,} / {self.total:,} events ({share:.0f}%)"
        else:
            done = _plural(self._events, "event")
        text = (f"{done}, {_plural(self._pages, 'page')}, {_human(self._events / elapsed)}/s, "
                f"{_elapsed_text(elapsed)}")
        return f"{text}, {self._note}" if self._note else text

    def summary(self, now: Optional[float] = None) -> str:
        """The run's last word: ``hubasync: 25,000 events in 25 pages, 0:03, 8.1k/s``."""
        elapsed = self._elapsed(now)
        return (f"{PROG}: {_plural(self._events, 'event')} in {_plural(self._pages, 'page')}, "
                f"{_elapsed_text(elapsed)}, {_human(self._events / elapsed)}/s")

    def finish(self, events: Optional[int] = None, pages: Optional[int] = None) -> None:
        """End the live line with the summary on a line of its own (only when the line is shown).

        Call it once, when the run is over and before the token line; ``events`` and ``pages``
        are the final counts, when they differ from the last update. Nothing is drawn after it.
        """
        if events is not None and pages is not None:
            self._events, self._pages = events, pages
        if not self.enabled or self._finished:
            return
        self.clear()
        self._finished = True
        self._write(self.summary() + "\n")

    def clear(self) -> None:
        """Remove the line so that what follows on the terminal starts clean."""
        if self.enabled and self._width:
            self._write("\r" + " " * self._width + "\r")
            self._width = 0

    def before_output(self) -> None:
        """Call before writing to stdout: when stdout is this terminal, the line is cleared
        and drawn again below the output, never over its last line."""
        if self._shares_terminal:
            self.clear()
            self._output_since_drawn = True

    @contextmanager
    def attached(self) -> Iterator[Progress]:
        """While inside, every line of :mod:`hubasync.cli.messages` clears this line first."""
        previous = messages.set_before_writing(self.clear)
        try:
            yield self
        finally:
            messages.set_before_writing(previous)

    def _elapsed(self, now: Optional[float]) -> float:
        return max((self._now() if now is None else now) - self._started, 1e-9)

    def _draw(self, text: str) -> None:
        limit = max(self._columns() - 1, 10)  # the last column would wrap on some terminals
        if len(text) > limit:
            text = text[:limit - 3] + "..."
        pad = max(0, self._width - len(text))
        start = "\r"
        if self._output_since_drawn:  # the output may have left the cursor mid-line
            start, pad = "\n", 0
            self._output_since_drawn = False
        self._write(start + text + " " * pad)
        self._width = len(text)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or broken: the line is not needed
            self.enabled = False
