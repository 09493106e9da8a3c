"""The bounds of a run, each declared once: its default, its range, its unit.

A bound keeps a run's time and effect finite against a hub that misbehaves or a network that
fails: how long to wait for bytes, how many failures in a row, how long a job may stay pending,
how long one page's body may take, how many pages without events, how large one event may be.
The command line (``--job-timeout 30m``), the library (``Client(timeout=20)``) and the service's
config (``job_timeout = "30m"`` or ``1800``) all check a value against the same declaration
here, so a value one of them accepts, the others accept too, with the same default.

Seconds may be written with a unit (``90``, ``90s``, ``5m``, ``24h``, ``7d``), sizes with a binary
suffix (``512K``, ``4M``, ``1G``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Type, Union

from hubasync.errors import UsageError

Number = Union[int, float]

SECONDS, COUNT, BYTES = "seconds", "count", "bytes"
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|"
                          r"h|hours?|d|days?)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([KMG]?)(?:I?B)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
WEEK = 7 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``24h``, ``7d``; raises ValueError."""
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a duration (e.g. 90, 30s, 5m, 24h, 7d): {text!r}")
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[(unit or "s")[0].lower()]


def parse_size(text: str) -> int:
    """Bytes from ``4096``, ``512K``, ``4M``, ``1G`` (binary: K = 1024); raises ValueError."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a size in bytes (e.g. 8M, 512K, 1G): {text!r}")
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[unit.upper()]


def size_text(size: int) -> str:
    """``size`` bytes in the largest binary unit that divides it (``16 MiB``), else in bytes."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size:,} bytes"


def seconds_text(seconds: float) -> str:
    """``1800 s``: how a duration is shown in messages and help."""
    return f"{seconds:g} s"


@dataclass(frozen=True)
class Bound:
    """One bound: its name (``job_timeout``: the config key and the library argument; the option
    is ``--job-timeout``), its unit, its default and its inclusive range (``above``: the low end
    itself is excluded), and what it bounds, for help texts."""

    name: str
    unit: str
    default: Number
    low: Number
    high: Number
    what: str
    above: bool = False

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def shown(self, value: Number) -> str:
        if self.unit == SECONDS:
            return seconds_text(float(value))
        if self.unit == BYTES:
            return size_text(int(value))
        return f"{int(value):,}"

    def range_text(self) -> str:
        low = self.shown(self.low)
        high = self.shown(self.high)
        return f"{'more than' if self.above else 'at least'} {low} and at most {high}"

    def parse(self, text: str) -> Number:
        """A value given as text (an option, a config string); raises ValueError naming the
        range."""
        if self.unit == SECONDS:
            value: Number = parse_duration(text)
        elif self.unit == BYTES:
            value = parse_size(text)
        else:
            stripped = text.strip()
            if not stripped.isdigit():
                raise ValueError(f"not a whole number: {text!r}")
            value = int(stripped)
        return self._in_range(value, text)

    def check(self, value: Any, where: str, error: Type[UsageError] = UsageError,
              type_error: Optional[Type[UsageError]] = None, *, text: bool = False) -> Number:
        """A value given as a number (the library, a config) or, with ``text``, as text (a
        config: "30m", "8M"), checked; raises ``error`` (``type_error`` for a wrong type)
        naming ``where``."""
        if text and isinstance(value, str):
            try:
                return self.parse(value)
            except ValueError as problem:
                raise error(f"{where}: {problem}") from None
        wrong = isinstance(value, bool) or not isinstance(value, (int, float)) or (
            self.unit != SECONDS and not isinstance(value, int))
        if wrong:
            kind = {SECONDS: "a number of seconds", COUNT: "a whole number",
                    BYTES: "a whole number of bytes"}[self.unit]
            raise (type_error or error)(f"{where}: must be {kind}, not {type(value).__name__}")
        try:
            return self._in_range(value, repr(value))
        except ValueError as problem:
            raise error(f"{where}: {problem}") from None

    def _in_range(self, value: Number, given: str) -> Number:
        if self.unit == SECONDS:
            value = float(value)
        low_ok = value > self.low if self.above else value >= self.low
        if not (math.isfinite(value) and low_ok and value <= self.high):
            raise ValueError(f"must be {self.range_text()}: {given}")
        return value


TIMEOUT = Bound("timeout", SECONDS, 60.0, 0, WEEK, above=True,
                what="the most to wait to connect or for the hub's next bytes")
RETRIES = Bound("retries", COUNT, 6, 0, 1000,
                what="transient failures tolerated in a row before giving up")
JOB_TIMEOUT = Bound("job_timeout", SECONDS, 1800.0, 0, WEEK, above=True,
                    what="the most a job may stay pending before the run ends")
PAGE_TIMEOUT = Bound("page_timeout", SECONDS, 900.0, 0, WEEK, above=True,
                     what="the most one page's body may take to arrive, however it trickles")
MAX_EMPTY_PAGES = Bound("max_empty_pages", COUNT, 100, 1, 10**12,
                        what="pages in a row without events, each with a new token, before the "
                             "run stops")
MAX_EVENT_SIZE = Bound("max_event_size", BYTES, 4 << 20, 1 << 10, 1 << 32,
                       what="the largest event accepted, and the longest run of whitespace "
                            "between events")

# How far a destination (syslog, RELP, HEC, Kafka) may fall behind the output, in events, before
# fetching from the hub waits for it: the bound on what a receiver that is down costs on disk.
MAX_LAG = Bound("max_lag", COUNT, 100_000, 1, 10**9,
                what="events a destination may fall behind before fetching waits for it")

ALL = (TIMEOUT, RETRIES, JOB_TIMEOUT, PAGE_TIMEOUT, MAX_EMPTY_PAGES, MAX_EVENT_SIZE)
BY_NAME: Dict[str, Bound] = {bound.name: bound for bound in ALL}


@dataclass(frozen=True)
class Bounds:
    """The value of every bound for one run (the defaults unless given)."""

    timeout: float = float(TIMEOUT.default)
    retries: int = int(RETRIES.default)
    job_timeout: float = float(JOB_TIMEOUT.default)
    page_timeout: float = float(PAGE_TIMEOUT.default)
    max_empty_pages: int = int(MAX_EMPTY_PAGES.default)
    max_event_size: int = int(MAX_EVENT_SIZE.default)


DEFAULTS = Bounds()
assert [f.name for f in fields(Bounds)] == [bound.name for bound in ALL]
