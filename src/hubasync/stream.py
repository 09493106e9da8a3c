"""Streaming decode of a results body: gunzip it and split its JSON array into raw events.

A results body is a JSON array of objects, usually gzip-compressed. ``make_decoder`` undoes the
``Content-Encoding`` chunk by chunk; ``EventSplitter`` takes the decoded bytes in chunks of any
size and hands back the bytes of each complete event exactly as sent, so a page is never held
whole. Anything that is not a JSON array of objects ends in ``BadBody``.

How events are found. The fast path works on a batch of complete events at a time, with a few
C-level passes and no Python work per event:

1. ``\\\\`` and ``\\"`` escapes are masked, so every remaining ``"`` delimits a string;
2. every byte except ``{ } [ ] " : ,`` is deleted (``bytes.translate``), leaving a skeleton
   like ``{"":"","":["",""]},{"":""}``; a regex checks that the skeleton is a sequence of flat
   objects: braces balanced and never nested, quotes paired, so no brace or bracket lies
   inside a string, brackets balanced (one level, strings only), colons and commas between
   members and elements, one comma between events;
3. the batch is split at ``},`` + whitespace + ``{`` (one ``re.split``), and the number of
   pieces must equal the number of objects in the skeleton, so the text between two events is
   exactly a comma and whitespace;
4. the batch must be valid UTF-8.

The fast path does not look at what the skeleton drops: the characters inside strings (an
invalid escape such as ``\\x`` or a raw control character passes), literals (numbers,
``true``, ``false``, ``null``: a bare word in value position passes, and so does a member with
its value missing), and stray bytes between tokens (``{"a":"b" x}`` passes). ``strict=True``
closes that gap by parsing every batch with the ``json`` module. Batches the fast path
rejects (nested objects, braces or brackets inside strings, unusual spacing, or an actual
error) go through an exact byte scanner one event at a time, and each such event is
validated with ``json.loads``, so an error is always reported, in either mode.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import List, Optional, Protocol

from hubasync.errors import BadBody

__all__ = [
    "Decoder",
    "EventSplitter",
    "compact_line",
    "decode_event",
    "make_decoder",
]


class Decoder(Protocol):
    """Undoes a ``Content-Encoding`` incrementally."""

    def decompress(self, data: bytes) -> bytes:
        """Return the decoded bytes that ``data`` completes (possibly none)."""
        ...

    def finish(self) -> bytes:
        """Return the last decoded bytes; raise ``BadBody`` if the stream is incomplete."""
        ...


class _Identity:
    def decompress(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


_GZIP_WBITS = 16 + zlib.MAX_WBITS


class _Gzip:
    """gzip, including bodies of several concatenated members (RFC 1952 §2.2)."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(_GZIP_WBITS)

    def decompress(self, data: bytes) -> bytes:
        if not data:
            return b""
        try:
            if self._z.eof:
                self._z = zlib.decompressobj(_GZIP_WBITS)
            out = self._z.decompress(data)
            while self._z.eof and self._z.unused_data:
                rest = self._z.unused_data
                self._z = zlib.decompressobj(_GZIP_WBITS)
                out += self._z.decompress(rest)
        except zlib.error as exc:
            raise BadBody(f"response body is not valid gzip: {exc}") from exc
        return out

    def finish(self) -> bytes:
        try:
            out = self._z.flush()
        except zlib.error as exc:
            raise BadBody(f"response body is not valid gzip: {exc}") from exc
        if not self._z.eof:
            raise BadBody("response body cut short: the gzip stream is incomplete")
        return out


def make_decoder(content_encoding: Optional[str]) -> Decoder:
    """The decoder for a response's ``Content-Encoding`` header value (None when absent)."""
    name = (content_encoding or "").strip().lower()
    if name in ("gzip", "x-gzip"):
        return _Gzip()
    if name in ("", "identity"):
        return _Identity()
    raise BadBody(f"unsupported Content-Encoding: {content_encoding!r}")


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
_OPEN_BRACE, _CLOSE_BRACE = 0x7B, 0x7D
_OPEN_BRACKET, _CLOSE_BRACKET = 0x5B, 0x5D
_QUOTE, _BACKSLASH = 0x22, 0x5C

_SKELETON_KEEP = b'{}[]":,'
_SKELETON_DELETE = bytes(b for b in range(256) if b not in _SKELETON_KEEP)
# An empty value is a literal (number, true, false, null) that the skeleton dropped.
_SKEL_VALUE = rb'(?:""|\[(?:(?:""|)(?:,(?:""|))*)?\]|)'
_SKEL_MEMBER = rb'"":' + _SKEL_VALUE
_SKEL_OBJECT = rb"\{(?:" + _SKEL_MEMBER + rb"(?:," + _SKEL_MEMBER + rb")*)?\}"
_SKELETON = re.compile(_SKEL_OBJECT + rb"(?:," + _SKEL_OBJECT + rb")*")
_SEPARATOR = re.compile(rb",(?<=\},)[ \t\n\r]*(?=\{)")

_STRUCTURE = re.compile(rb'["{}\[\]]')
_STRING_END = re.compile(rb'["\\]')

_MIN_BATCH = 4 << 10
_MAX_BATCH = 1 << 20
# A partial event longer than this stops being re-copied on each feed and is scanned instead.
_LONG_EVENT = 256 << 10


def _fast_split(region: bytes) -> Optional[List[bytes]]:
    """The events of ``region`` (from a "{" to a "}"), or None if the fast path cannot vouch."""
    masked = region
    if b"\\" in masked:
        masked = masked.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    skeleton = masked.translate(None, _SKELETON_DELETE)
    if _SKELETON.fullmatch(skeleton) is None:
        return None
    pieces = _SEPARATOR.split(region)
    if len(pieces) != skeleton.count(b"{"):
        return None
    if not region.isascii():
        try:
            region.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return pieces


class EventSplitter:
    """Incremental splitter of a JSON array of objects into the raw bytes of each object.

    ``feed`` the body in chunks of any size; it returns the events each chunk completes.
    ``finish`` at the end of the body checks that the array was complete. Both raise
    ``BadBody`` when the body is not a JSON array of objects; after that the splitter stays
    failed. ``strict=True`` parses every event with the ``json`` module (see the module
    docstring for what the default checks).
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.count = 0
        self._state = _BEFORE
        self._tail = b""
        self._offset = 0  # position in the body of self._tail[0]
        self._batch = _MIN_BATCH
        self._parts: List[bytes] = []
        self._stack = bytearray()
        self._in_string = False
        self._escaped = False

    def feed(self, data: bytes) -> List[bytes]:
        """Take the next chunk of the body; return the events it completes, in order."""
        events: List[bytes] = []
        try:
            self._feed(bytes(data), events)
        except BadBody:
            self._state = _FAILED
            raise
        self.count += len(events)
        return events

    def finish(self) -> None:
        """Declare the end of the body; raise ``BadBody`` unless it held a whole array."""
        state = self._state
        if state == _DONE:
            return
        self._state = _FAILED
        if state == _FAILED:
            raise BadBody("response body is not a JSON array of objects")
        if state == _BEFORE:
            raise BadBody("response body is empty")
        raise BadBody(f"response body cut short after {self.count} events")

    def _fail(self, buf: bytes, pos: int, expected: str) -> BadBody:
        found = buf[pos : pos + 1]
        return BadBody(
            f"response body is not a JSON array of objects: expected {expected} at byte "
            f"{self._offset + pos}, found {found!r}"
        )

    def _feed(self, data: bytes, events: List[bytes]) -> None:
        state = self._state
        if state == _FAILED:
            raise BadBody("response body is not a JSON array of objects")
        if state == _SLOW:
            end = self._scan(data, 0)
            if end < 0:
                self._parts.append(data)
                self._offset += len(data)
                return
            self._parts.append(data[:end])
            self._emit_slow(b"".join(self._parts), events)
            self._parts = []
            buf, pos, state = data, end, _AFTER
        else:
            buf = self._tail + data if self._tail else data
            pos = 0
        n = len(buf)
        while True:
            if state == _EVENT:
                pos, state = self._event(buf, pos, events)
                if state != _AFTER:
                    break
                continue
            while pos < n and buf[pos] in _WHITESPACE:
                pos += 1
            if pos == n:
                break
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

    def _event(self, buf: bytes, pos: int, events: List[bytes]) -> tuple[int, int]:
        """Consume events from ``buf[pos]`` (a "{"); return the new position and state."""
        if buf.find(b"}", pos) < 0:
            if len(buf) - pos < _LONG_EVENT:
                return pos, _EVENT  # wait for the rest of the event
            return self._slow(buf, pos, events)
        batch = self._batch
        while True:
            end = buf.rfind(b"}", pos, pos + batch)
            if end < 0:
                break
            region = buf[pos : end + 1]
            pieces = _fast_split(region)
            if pieces is not None:
                if self.strict:
                    _check_batch(region)
                events.extend(pieces)
                self._batch = min(batch * 2, _MAX_BATCH)
                return end + 1, _AFTER
            batch = min(batch, end + 1 - pos) // 4
            if batch < _MIN_BATCH:
                break
        self._batch = _MIN_BATCH
        return self._slow(buf, pos, events)

    def _slow(self, buf: bytes, pos: int, events: List[bytes]) -> tuple[int, int]:
        self._stack.clear()
        self._in_string = self._escaped = False
        end = self._scan(buf, pos)
        if end < 0:
            self._parts = [buf[pos:]]
            return len(buf), _SLOW
        self._emit_slow(buf[pos:end], events)
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
                    stack.append(c)
                else:
                    # "}" closes "{" and "]" closes "[": their codes differ by 2.
                    if not stack or stack.pop() != c - 2:
                        raise self._fail(buf, pos - 1, "balanced brackets")
                    if not stack:
                        return pos
        return -1

    def _emit_slow(self, raw: bytes, events: List[bytes]) -> None:
        decode_event(raw)
        events.append(raw)


def _check_batch(region: bytes) -> None:
    try:
        json.loads(b"[" + region + b"]")
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


def decode_event(raw: bytes) -> dict[str, object]:
    """Parse one event; raise ``BadBody`` unless it is a JSON object in UTF-8."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"response body holds an invalid event: {exc}") from exc
    if not isinstance(value, dict):
        raise BadBody(f"response body holds a {type(value).__name__} where an object belongs")
    return value
