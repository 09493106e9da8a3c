"""A results body's JSON array split into events, as they stream in.

A results body is a JSON array of objects (gunzipped by :mod:`hubasync.events.decoding`).
``EventSplitter`` takes the decoded bytes in chunks of any size and hands
back the events each chunk completes as a :class:`Batch`: runs of whole events kept as the hub's
own bytes, so a page is never held whole and a JSON array can be written without decoding and
encoding every event. Anything that is not a JSON array of objects ends in ``BadBody``.

How events are found. The fast path takes a run of events up to the last occurrence of the
hub's separator (``},{``, learnt from the body) and checks it with a few C-level passes and no
Python work per event: escapes are taken out and every byte but braces, brackets, quotes and
commas is deleted (``bytes.translate``); strings are removed (adjacent quote pairs, then the few
strings that hold structural characters), then flat lists; what is left must be ``{...}`` groups
holding only commas, exactly one comma between two groups. So every brace and bracket is
outside strings, objects do not nest, lists are flat, quotes pair up, and events are separated
by one comma; the count of groups is the count of events.

The fast path does not look at what the skeleton drops: literals (a bare word or a missing
value passes), colons and commas inside an event (``{"a" "b"}`` and ``{"a":"b",}`` pass), stray
bytes between tokens or events, raw control characters in strings, and UTF-8 validity.
``strict=True`` closes that gap by parsing every run with the ``json`` module (``orjson`` first
when the ``fast`` extra is installed; see :mod:`hubasync.events.parsing`). Runs the fast
path rejects (nested objects, or an actual error) go through an exact byte scanner one event
at a time, and each such event is validated with ``json.loads``, so an error is always reported,
in either mode. Cutting a run into single events (for JSON lines, CSV) is done only when asked.
``strict=True`` also refuses ``NaN``, ``Infinity`` and ``-Infinity``, which are not standard JSON.

Bounds against a hostile body (``BodyTooLarge``, not retried): no event may be larger than
``max_event_size`` bytes (:data:`hubasync.core.bounds.MAX_EVENT_SIZE`), and no run of whitespace
outside events either; brackets may nest at most :data:`MAX_DEPTH` deep inside an event. The
partial event kept between chunks never grows past the cap, and whitespace is skipped by
regular expressions, not byte by byte, so memory stays within a few times the cap (plus the
decoded event, when one is parsed) and a flood of whitespace or brackets ends in bounded time.
"""

from __future__ import annotations

import json
import re
from typing import List, Optional

from hubasync.core.bounds import DEFAULTS, size_text
from hubasync.errors import BadBody, BodyTooLarge
from hubasync.events.parsing import parse_array, refuse_constant

__all__ = [
    "MAX_DEPTH",
    "EventSplitter",
    "compact_line",
    "decode_event",
]


# States of EventSplitter: what the next non-whitespace byte must be.
_BEFORE = 0  # "["
_FIRST = 1  # "{" or "]"
_NEXT = 2  # "{" (after a comma)
_AFTER = 3  # "," or "]" (after an event)
_EVENT = 4  # the buffer starts at an event's "{"
_SLOW = 5  # inside an event too odd or too large for the fast path; see _scan
_DONE = 6  # only whitespace may follow
_FAILED = 7

_WHITESPACE = b" \t\n\r"
_NOT_WHITESPACE = re.compile(rb"[^ \t\n\r]")
_OPEN_BRACE, _CLOSE_BRACE = 0x7B, 0x7D
_OPEN_BRACKET, _CLOSE_BRACKET = 0x5B, 0x5D
_QUOTE, _BACKSLASH = 0x22, 0x5C

_SKELETON_DELETE = bytes(b for b in range(256) if b not in b'{}[]"')
# An escape: a backslash and the byte after it, unless that is a brace or a bracket.
_ESCAPE = re.compile(rb"\\[^{}\[\]]")
_SEPARATORS = (b"},{", b"}, {", b"},\n{", b"},\r\n{", b"}\n,{")

_STRUCTURE = re.compile(rb'["{}\[\]]')
_STRING_END = re.compile(rb'["\\]')

# A partial event longer than this stops being re-copied on each feed and is scanned instead.
_LONG_EVENT = 256 << 10
# The fast path checks runs of events of about this many bytes, more after each success.
_MIN_WINDOW = 4 << 10
_MAX_WINDOW = 4 << 20

MAX_DEPTH = 512
"""How deep brackets may nest inside an event, the event's own braces included."""


def _end_before_whitespace(buf: bytes, pos: int, end: int) -> int:
    """The index just past the last byte of ``buf[pos:end]`` that is not whitespace, or pos."""
    if end > pos and buf[end - 1] not in _WHITESPACE:
        return end
    return pos + len(buf[pos:end].rstrip(_WHITESPACE))


def _last_event_end(buf: bytes, pos: int) -> int:
    """The index of the "}" that ends the array's last event, if ``buf`` ends the array."""
    end = _end_before_whitespace(buf, pos, len(buf)) - 1
    if end <= pos or buf[end] != _CLOSE_BRACKET:
        return -1
    end = _end_before_whitespace(buf, pos, end) - 1
    return end if end > pos and buf[end] == _CLOSE_BRACE else -1


def _mask_escapes(region: bytes) -> bytes:
    """``region`` with escaped quotes blanked, so that every ``"`` left delimits a string.

    A quote is escaped when an odd number of backslashes stands before it; escaped
    backslashes are blanked first only where a quote follows two or more backslashes. Lengths
    are kept, so positions in the result are positions in ``region``.
    """
    if b'\\"' not in region:
        return region
    if b'\\\\"' in region:
        region = region.replace(b"\\\\", b"__")
    return region.replace(b'\\"', b"__")


def _count_flat_events(region: bytes) -> Optional[int]:
    """How many events ``region`` holds, or None if the fast check cannot vouch for it.

    ``region`` runs from an event's ``{`` to a later event's ``}``. Escapes are removed (a
    backslash with the byte it escapes; a backslash before a brace or a bracket is left, as
    no JSON escape is), then everything but braces, brackets and quotes is deleted; adjacent
    quote pairs (strings without a brace or a bracket) go, then the strings left, then flat
    lists; what remains must be ``{}`` once per event.
    """
    if b"\\" in region:
        region = _ESCAPE.sub(b"", region)
    skeleton = region.translate(None, _SKELETON_DELETE).replace(b'""', b"")
    if b'"' in skeleton:
        if skeleton.count(b'"') & 1:
            return None
        skeleton = b"".join(skeleton.split(b'"')[::2])
    if b"[" in skeleton:
        lists = skeleton.count(b"[]")
        if skeleton.count(b"[") != lists or skeleton.count(b"]") != lists:
            return None
        skeleton = skeleton.translate(None, b"[]")
    events = len(skeleton) // 2
    if skeleton != b"{}" * events:
        return None
    return events


def _split_on(region: bytes, separator: bytes) -> List[bytes]:
    """The events of a checked ``region``, cut at its separators that lie outside strings.

    A separator inside a string leaves an odd number of quotes before it within its piece:
    such a piece is joined with the next. Separators start with ``}`` and end with ``{``.
    """
    events: List[bytes] = []
    start = cursor = quotes = 0
    step = len(separator)
    for piece in _mask_escapes(region).split(separator):
        cursor += len(piece)
        quotes += piece.count(b'"')
        if quotes & 1:
            cursor += step
            continue
        events.append(region[start : cursor + 1])
        cursor += step
        start = cursor - 1
        quotes = 0
    if quotes & 1:  # cannot happen for a checked region; keep the rest whole
        events.append(region[start:])
    return events


def _separator_after(buf: bytes, end: int) -> Optional[bytes]:
    """The bytes from the "}" before ``end`` to the next "{", if they are a short separator."""
    start = buf.find(b"{", end, end + 16)
    if start < 0:
        return None
    separator = buf[end - 1 : start + 1]
    inner = separator[1:-1]
    if inner.count(b",") == 1 and not inner.replace(b",", b"").strip(_WHITESPACE):
        return separator
    return None


class Batch:
    """The complete events a chunk of the body brought, kept as the hub's own bytes.

    ``regions`` are runs of events as sent (each from a ``{`` to a ``}``, the hub's separators
    between the events of a run); ``count`` is the number of events in all of them. A JSON
    array is written from the regions as they are; :meth:`lines` and :meth:`events` cut them
    into single events only when asked.
    """

    __slots__ = ("regions", "counts", "count", "_separator")

    def __init__(self, separator: Optional[bytes] = None) -> None:
        self.regions: List[bytes] = []
        self.counts: List[int] = []
        self.count = 0
        self._separator = separator

    @classmethod
    def of(cls, events: List[bytes]) -> Batch:
        """A batch of single events (each one JSON object's bytes)."""
        batch = cls()
        for event in events:
            batch.add(event, 1)
        return batch

    def add(self, region: bytes, count: int) -> None:
        self.regions.append(region)
        self.counts.append(count)
        self.count += count

    def __bool__(self) -> bool:
        return self.count > 0

    def lines(self, between: bytes = b"\n") -> bytes:
        """The events one a line, with ``between`` (a newline by default) between two of them.

        An event is put on one line if the hub spread it over several.
        """
        parts: List[bytes] = []
        separator = self._separator
        for region, count in zip(self.regions, self.counts):
            if count == 1:
                parts.append(compact_line(region))
            elif (separator is not None and b"\n" not in separator and b"\n" not in region
                    and b"\r" not in region):
                # One newline a separator replaced; more means a string held the separator.
                lines = region.replace(separator, b"}\n{")
                if lines.count(b"\n") == count - 1:
                    parts.append(lines if between == b"\n" else lines.replace(b"\n", between))
                else:
                    parts.append(between.join(compact_line(raw)
                                              for raw in self._cut(region, count)))
            elif (separator is not None and b"\r" not in region
                    and region.count(b"\n") == separator.count(b"\n") * (count - 1)
                    and region.count(separator) == count - 1):  # one event a line already
                parts.append(region.replace(separator, b"}" + between + b"{"))
            else:
                parts.append(between.join(compact_line(raw) for raw in self._cut(region, count)))
        return between.join(parts)

    def events(self) -> List[bytes]:
        """The raw bytes of each event, exactly as sent."""
        events: List[bytes] = []
        for region, count in zip(self.regions, self.counts):
            if count == 1:
                events.append(region)
            else:
                events.extend(self._cut(region, count))
        return events

    def _cut(self, region: bytes, count: int) -> List[bytes]:
        if self._separator is not None:
            events = _split_on(region, self._separator)
            if len(events) == count:
                return events
        splitter = EventSplitter(max_event_size=max(len(region), 2))
        splitter._fast = False  # noqa: SLF001 - the exact scanner, event by event
        events = splitter.feed(b"[" + region + b"]")
        splitter.finish()
        return events


class EventSplitter:
    """Incremental splitter of a JSON array of objects into its events.

    ``feed_batch`` the body in chunks of any size; it returns the events each chunk
    completes, as a :class:`Batch` of the hub's own bytes (``feed`` returns them one by one).
    ``finish`` at the end of the body checks that the array was complete. Both raise
    ``BadBody`` when the body is not a JSON array of objects; after that the splitter stays
    failed. ``strict=True`` parses every event with the ``json`` module (see the module
    docstring for what the default checks). An event larger than ``max_event_size`` bytes, a
    longer run of whitespace between events, or brackets nested deeper than :data:`MAX_DEPTH`
    raise ``BodyTooLarge``.
    """

    def __init__(self, strict: bool = False,
                 max_event_size: int = DEFAULTS.max_event_size) -> None:
        if max_event_size < 2:
            raise ValueError(f"max_event_size must be at least 2 bytes: {max_event_size!r}")
        self.strict = strict
        self.max_event_size = max_event_size
        self.count = 0
        self._state = _BEFORE
        self._tail = b""
        self._offset = 0  # position in the body of self._tail[0]
        self._separator: Optional[bytes] = None
        self._window = _MIN_WINDOW * 16
        self._fast = True
        self._searched = 0  # bytes of the pending partial event already searched
        self._parts: List[bytes] = []
        self._partial = 0  # bytes in self._parts
        self._gap = 0  # bytes of the current run of whitespace outside events
        self._stack = bytearray()
        self._in_string = False
        self._escaped = False

    def feed(self, data: bytes) -> List[bytes]:
        """Take the next chunk of the body; return the raw events it completes, in order."""
        return self.feed_batch(data).events()

    def feed_batch(self, data: bytes) -> Batch:
        """Take the next chunk of the body; return the events it completes as a batch."""
        batch = Batch(self._separator)
        try:
            self._feed(bytes(data), batch)
        except (BadBody, BodyTooLarge):
            self._state = _FAILED
            raise
        batch._separator = self._separator  # noqa: SLF001 - learnt while feeding
        self.count += batch.count
        return batch

    def finish(self) -> None:
        """Declare the end of the body; raise ``BadBody`` unless it held a whole array."""
        state = self._state
        if state == _DONE:
            return
        if state == _EVENT and self._tail:
            # Whatever the fast path was waiting for: the exact scanner says what the rest is.
            tail, self._tail = self._tail, b""
            self._fast = False
            self.feed_batch(tail)  # raises if the rest is not the start of an array's end
            state = self._state
            if state == _DONE:  # cannot happen: the fast path would have taken it
                return
        self._state = _FAILED
        if state == _FAILED:
            raise BadBody("response body is not a JSON array of objects")
        if state == _BEFORE:
            raise BadBody("response body is empty")
        events = "1 event" if self.count == 1 else f"{self.count} events"
        raise BadBody(f"response body cut short after {events}")

    def _too_large(self, start: int, size: int) -> BodyTooLarge:
        return BodyTooLarge(
            f"an event larger than {size_text(self.max_event_size)} (--max-event-size): the "
            f"hub sent at least {size:,} bytes of one event, from byte {start} of the body")

    def _too_deep(self, pos: int) -> BodyTooLarge:
        return BodyTooLarge(
            f"an event nested deeper than {MAX_DEPTH} levels: the hub sent brackets nested "
            f"past that at byte {self._offset + pos} of the body")

    def _skip_whitespace(self, buf: bytes, pos: int) -> int:
        """The index of the next byte that is not whitespace (or ``len(buf)``), within bounds."""
        match = _NOT_WHITESPACE.search(buf, pos)
        end = len(buf) if match is None else match.start()
        self._gap += end - pos
        if self._gap > self.max_event_size:
            raise BodyTooLarge(
                f"more than {size_text(self.max_event_size)} of whitespace between two events "
                f"(--max-event-size): the hub padded the body before byte {self._offset + end}")
        return end

    def _fail(self, buf: bytes, pos: int, expected: str) -> BadBody:
        found = buf[pos : pos + 1]
        return BadBody(
            f"response body is not a JSON array of objects: expected {expected} at byte "
            f"{self._offset + pos}, found {found!r}"
        )

    def _feed(self, data: bytes, batch: Batch) -> None:
        state = self._state
        if state == _FAILED:
            raise BadBody("response body is not a JSON array of objects")
        if state == _SLOW:
            end = self._scan(data, 0)
            size = self._partial + (len(data) if end < 0 else end)
            if size > self.max_event_size:
                raise self._too_large(self._offset - self._partial, size)
            if end < 0:
                self._parts.append(data)
                self._partial = size
                self._offset += len(data)
                return
            self._parts.append(data[:end])
            raw = b"".join(self._parts)
            self._parts, self._partial = [], 0
            self._emit_slow(raw, batch)
            buf, pos, state = data, end, _AFTER
        else:
            buf = self._tail + data if self._tail else data
            pos = 0
        n = len(buf)
        while True:
            if state == _EVENT:
                pos, state = self._event(buf, pos, batch)
                if state != _AFTER:
                    break
                continue
            if pos < n and buf[pos] in _WHITESPACE:
                pos = self._skip_whitespace(buf, pos)
            if pos == n:
                break
            self._gap = 0
            c = buf[pos]
            if state == _AFTER:
                if c == 0x2C:
                    state = _NEXT
                elif c == _CLOSE_BRACKET:
                    state = _DONE
                else:
                    raise self._fail(buf, pos, "',' or ']' after an event")
                pos += 1
            elif state == _NEXT:
                if c != _OPEN_BRACE:
                    raise self._fail(buf, pos, "an object after ','")
                state = _EVENT
            elif state == _FIRST:
                if c == _OPEN_BRACE:
                    state = _EVENT
                elif c == _CLOSE_BRACKET:
                    state = _DONE
                    pos += 1
                else:
                    raise self._fail(buf, pos, "an object or ']' after '['")
            elif state == _BEFORE:
                if c != _OPEN_BRACKET:
                    raise self._fail(buf, pos, "'['")
                state = _FIRST
                pos += 1
            else:  # _DONE
                raise self._fail(buf, pos, "the end of the body after ']'")
        self._state = state
        if state == _SLOW:
            self._tail = b""
            self._offset += n
        else:
            self._tail = buf[pos:]
            self._offset += pos

    def _learn_separator(self, buf: bytes, start: int) -> Optional[bytes]:
        found = [(buf.find(separator, start), separator) for separator in _SEPARATORS]
        found = [item for item in found if item[0] >= 0]
        return min(found)[1] if found else None

    def _event(self, buf: bytes, pos: int, batch: Batch) -> tuple[int, int]:
        """Consume events from ``buf[pos]`` (a "{"); return the new position and state."""
        if not self._fast:
            return self._slow(buf, pos, batch)
        # What an earlier feed searched of this partial event need not be searched again.
        start = max(pos, pos + self._searched - 8)
        self._searched = 0
        separator = self._separator or self._learn_separator(buf, start)
        if separator is not None:
            end = buf.rfind(separator, start, pos + min(self._window, self.max_event_size))
            if end < 0:
                end = buf.find(separator, start)
            if end >= 0:
                if self._take(buf[pos : end + 1], batch, pos):
                    self._separator = separator
                    self._window = min(self._window * 2, _MAX_WINDOW)
                    return end + 1, _AFTER
                self._window = max(self._window // 4, _MIN_WINDOW)
                return self._slow(buf, pos, batch)
        last = _last_event_end(buf, pos)
        if last >= 0:
            if self._take(buf[pos : last + 1], batch, pos):
                return last + 1, _AFTER
            return self._slow(buf, pos, batch)
        if len(buf) - pos < min(_LONG_EVENT, self.max_event_size):
            self._searched = len(buf) - pos
            return pos, _EVENT  # wait for the rest of the event
        return self._slow(buf, pos, batch)

    def _take(self, region: bytes, batch: Batch, pos: int) -> bool:
        """Add ``region`` to the batch if the fast check vouches for it."""
        count = _count_flat_events(region)
        if count is None:
            return False
        if len(region) > self.max_event_size:
            if count > 1:
                return False  # the exact scanner measures each event
            raise self._too_large(self._offset + pos, len(region))
        if self.strict:
            _check_batch(region)
        batch.add(region, count)
        return True

    def _slow(self, buf: bytes, pos: int, batch: Batch) -> tuple[int, int]:
        self._stack.clear()
        self._in_string = self._escaped = False
        end = self._scan(buf, pos)
        size = (len(buf) if end < 0 else end) - pos
        if size > self.max_event_size:
            raise self._too_large(self._offset + pos, size)
        if end < 0:
            self._parts = [buf[pos:]]
            self._partial = size
            return len(buf), _SLOW
        self._emit_slow(buf[pos:end], batch)
        if self._separator is None:
            self._separator = _separator_after(buf, end)
        return end, _AFTER

    def _scan(self, buf: bytes, pos: int) -> int:
        """Follow one event through ``buf``; return the index just past its end, or -1.

        The state (open brackets, inside a string, after a backslash) carries over between
        calls, so the event may arrive in any number of chunks.
        """
        stack = self._stack
        n = len(buf)
        while pos < n:
            if self._escaped:
                self._escaped = False
                pos += 1
            elif self._in_string:
                match = _STRING_END.search(buf, pos)
                if match is None:
                    return -1
                pos = match.end()
                if buf[pos - 1] == _BACKSLASH:
                    self._escaped = True
                else:
                    self._in_string = False
            else:
                match = _STRUCTURE.search(buf, pos)
                if match is None:
                    return -1
                pos = match.end()
                c = buf[pos - 1]
                if c == _QUOTE:
                    self._in_string = True
                elif c in (_OPEN_BRACE, _OPEN_BRACKET):
                    if len(stack) >= MAX_DEPTH:
                        raise self._too_deep(pos - 1)
                    stack.append(c)
                else:
                    # "}" closes "{" and "]" closes "[": their codes differ by 2.
                    if not stack or stack.pop() != c - 2:
                        raise self._fail(buf, pos - 1, "balanced brackets")
                    if not stack:
                        return pos
        return -1

    def _emit_slow(self, raw: bytes, batch: Batch) -> None:
        decode_event(raw, strict=self.strict)
        batch.add(raw, 1)


def _check_batch(region: bytes) -> None:
    try:
        parse_array(b"[" + region + b"]", strict=True)  # orjson first, if installed
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"response body holds an invalid event: {exc}") from exc


# A JSON string, or a run of whitespace outside strings.
_STRING_OR_SPACE = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|[ \t\n\r]+', re.DOTALL)


def compact_line(raw: bytes) -> bytes:
    """The event ``raw`` (one valid JSON object) as JSON text on one line.

    ``raw`` itself when it holds no line break; otherwise ``raw`` without the whitespace
    between its tokens. Strings, numbers and key order are kept byte for byte (no re-encoding,
    so nothing about the event changes). Raises ``BadBody`` if ``raw`` is not valid JSON
    and a line break remains.
    """
    if b"\n" not in raw and b"\r" not in raw:
        return raw
    line = _STRING_OR_SPACE.sub(rb"\1", raw)
    if b"\n" in line or b"\r" in line:
        decode_event(raw)  # raises: a raw line break inside a string is invalid JSON
        raise BadBody("event holds a raw line break inside a string")
    return line


def decode_event(raw: bytes, strict: bool = False) -> dict[str, object]:
    """Parse one event; raise ``BadBody`` unless it is a JSON object in UTF-8.

    ``strict`` also refuses ``NaN``, ``Infinity`` and ``-Infinity``.
    """
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=refuse_constant) if strict else json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"response body holds an invalid event: {exc}") from exc
    if not isinstance(value, dict):
        raise BadBody(f"response body holds a {type(value).__name__} where an object belongs")
    return value
