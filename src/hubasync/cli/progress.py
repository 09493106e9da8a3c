"""The live progress line on a terminal's stderr: events, pages, rate, elapsed, total."""

from __future__ import annotations

import time
from typing import Callable, Optional, TextIO


def _human(number: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= size:
            return f"{number / size:.1f}{unit}"
    return f"{number:.0f}"


def _elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Redraws one status line at most a few times a second; silent when disabled."""

    def __init__(self, stream: TextIO, *, enabled: bool, interval: float = 0.2,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.total: Optional[int] = None
        self._stream = stream
        self._interval = interval
        self._now = now
        self._started = now()
        self._drawn_at = 0.0
        self._width = 0
        self._events = 0
        self._pages = 0
        self._note = ""

    def update(self, events: int, pages: int, *, force: bool = False) -> None:
        """New counts; the note (a retry, "up to date") lasts until the counts move."""
        if (events, pages) != (self._events, self._pages):
            self._note = ""
        self._events, self._pages = events, pages
        self._redraw(force)

    def note(self, text: str) -> None:
        """Show ``text`` after the counts at once."""
        self._note = text
        self._redraw(True)

    def _redraw(self, force: bool) -> None:
        if not self.enabled:
            return
        now = self._now()
        if force or now - self._drawn_at >= self._interval:
            self._drawn_at = now
            self._draw(self.line(now))

    def line(self, now: Optional[float] = None) -> str:
        """The status line as it would be drawn now."""
        elapsed = max((self._now() if now is None else now) - self._started, 1e-9)
        done = f"{self._events:,}"
        if self.total is not None:
            share = 100.0 * self._events / self.total if self.total else 100.0
            done += f" / {self.total:,} events ({share:.0f}%)"
        else:
            done += " events"
        page_word = "page" if self._pages == 1 else "pages"
        text = (f"{done}, {self._pages} {page_word}, {_human(self._events / elapsed)}/s, "
                f"{_elapsed_text(elapsed)}")
        return f"{text}, {self._note}" if self._note else text

    def clear(self) -> None:
        """Remove the line so that what follows on stderr starts clean."""
        if self.enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self._stream.write("\r" + text + " " * pad)
        self._stream.flush()
        self._width = len(text)
