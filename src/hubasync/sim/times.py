"""Times of the hub: event time strings (``YYYY-MM-DD HH:MM:SSZ``) and query time parameters."""

from __future__ import annotations

import calendar
import math
import re
import time
from typing import List, Optional

_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_CLOCKS: List[str] = []


def _clock_strings() -> List[str]:
    if not _CLOCKS:
        _CLOCKS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))
    return _CLOCKS


class DayClock:
    """Lookup tables to format epoch seconds as ``YYYY-MM-DD HH:MM:SSZ`` bytes without a call each.

    ``days_between(a, b)[t // 86400] + clocks[t % 86400]`` is the time string of ``t``.
    """

    def __init__(self) -> None:
        self.clocks = [f"{c}Z".encode() for c in _clock_strings()]
        self._days: dict[int, bytes] = {}

    def days_between(self, first: int, last: int) -> dict[int, bytes]:
        """The day-prefix table, covering at least the days of epochs ``first`` to ``last``."""
        for day in range(first // 86400, last // 86400 + 1):
            if day not in self._days:
                self._days[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86400)).encode()
        return self._days


def format_time(epoch: int) -> str:
    """One epoch second as the hub's event time string."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


def parse_datetime(text: str) -> Optional[float]:
    """A date or ISO date-time (UTC unless it has an offset) as epoch seconds, or None."""
    m = _DATE_RE.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, sec, frac, zone = m.groups()
    try:
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(sec or 0))
        if not (1 <= fields[1] <= 12 and 1 <= fields[2] <= 31 and fields[3] < 24):
            return None
        if fields[4] >= 60 or fields[5] >= 61:
            return None
        epoch = float(calendar.timegm((*fields, 0, 0, 0)))
        if time.gmtime(epoch)[:3] != fields[:3]:  # e.g. February 31st (timegm normalises)
            return None
    except (ValueError, OverflowError):
        return None
    if frac:
        epoch += int(frac) / 10 ** len(frac)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def parse_time_param(text: str, now: float) -> Optional[float]:
    """A ``start``/``end`` value as epoch seconds, or None when malformed.

    A date or date-time; or a number: positive is Unix epoch seconds, zero or negative is that
    many seconds before ``now``.
    """
    value = text.strip()
    if _NUMBER_RE.fullmatch(value):
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number) or abs(number) > 1e11:
            return None
        return number if number > 0 else now + number
    return parse_datetime(value)


def event_time(value: object) -> Optional[int]:
    """The epoch second of an event's time attribute value (a string, or the first of a list)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value)
    return None if parsed is None else int(parsed)
