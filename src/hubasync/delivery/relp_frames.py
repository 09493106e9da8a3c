"""The RELP protocol without sockets: frames to send, responses parsed from what was read, and
which transactions they settle.

Facts from the RELP specification (librelp's doc/relp.md): a frame is ``TXNR SP COMMAND SP
DATALEN [SP DATA] LF``; TXNR counts up from 1 on each connection and after 999,999,999 comes 1;
TXNR 0 is for hints (``serverclose``); a command is 1 to 32 letters; the server answers each
command with ``rsp`` of the same TXNR, in the order received, whose data is ``CODE SP TEXT [LF
DATA]`` (200 is OK). A session starts with ``open``, whose data are offers, one per line
(``relp_version=0``, ``relp_software=...``, ``commands=syslog``), and ends with ``close``.

Acknowledgements arrive by the thousand: a run of ``N rsp 6 200 OK`` frames is recognised by
one regular expression over the whole read and its TXNRs checked with C-level list operations,
not frame by frame in Python. Anything else (another code, a hint, a frame cut by the read) goes
through the exact parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

MAX_TXNR = 999_999_999
MAX_RESPONSE = 128 * 1024  # librelp's maximum DATALEN; nothing a server answers comes near it
_OK_RUN = re.compile(rb"(?:[0-9]{1,9} rsp 6 200 OK\n)+")
_TXNR_OF_RUN = re.compile(rb"([0-9]+) rsp")
_OK_TAIL = " rsp 6 200 OK\n"
_HEADER = re.compile(rb"([0-9]{1,9}) ([A-Za-z]{1,32}) ([0-9]{1,9})([ \n])")
_HEADER_LIMIT = 9 + 1 + 32 + 1 + 9 + 1


def _ok_run(first: int, count: int) -> bytes:
    """The bytes of ``count`` OK responses from TXNR ``first``, built at C speed."""
    return (_OK_TAIL.join(map(str, range(first, first + count))) + _OK_TAIL).encode("ascii")


def next_txnr(txnr: int) -> int:
    return 1 if txnr >= MAX_TXNR else txnr + 1


def offers(software: str, version: str) -> bytes:
    """The data of our ``open`` command."""
    return (b"relp_version=0\nrelp_software=%s,%s,https://github.com/arcticsecurity\n"
            b"commands=syslog" % (software.encode(), version.encode()))


def frame(txnr: int, command: bytes, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command, len(data), data)
    return b"%d %s 0\n" % (txnr, command)


def syslog_frames(first_txnr: int, messages: Sequence[bytes]) -> bytes:
    """``syslog`` frames for ``messages``, TXNRs counting from ``first_txnr``, joined."""
    last = first_txnr + len(messages) - 1
    if last <= MAX_TXNR:
        return b"".join([b"%d syslog %d %s\n" % (txnr, len(message), message)
                         for txnr, message in zip(range(first_txnr, last + 1), messages)])
    txnrs = []
    txnr = first_txnr
    for _ in messages:
        txnrs.append(txnr)
        txnr = next_txnr(txnr)
    return b"".join([b"%d syslog %d %s\n" % (t, len(m), m) for t, m in zip(txnrs, messages)])


def syslog_frames_of(first_txnr: int, prefix: bytes, keys: Sequence[bytes],
                     events: Sequence[bytes]) -> bytes:
    """``syslog`` frames of the messages ``prefix + keys[i] + b'"] ' + events[i]`` (see
    ``syslog_format.MessageParts``), TXNRs from ``first_txnr``, joined: one ``%`` formatting
    per event, no message built on its own."""
    base = len(prefix) + 3
    if first_txnr + len(events) - 1 > MAX_TXNR:
        return syslog_frames(first_txnr, [b'%s%s"] %s' % (prefix, k, e)
                                          for k, e in zip(keys, events)])
    return b"".join([b'%d syslog %d %s%s"] %s\n' % (txnr, base + len(key) + len(event), prefix,
                                                     key, event)
                     for txnr, key, event in zip(range(first_txnr, first_txnr + len(events)),
                                                 keys, events)])


def txnr_after(first: int, count: int) -> int:
    """The TXNR ``count`` steps after ``first``."""
    return (first - 1 + count) % MAX_TXNR + 1


@dataclass(frozen=True)
class Responses:
    """A run of consecutive TXNRs answered alike: ``count`` transactions from ``first``."""

    first: int
    count: int
    code: int  # 200 is OK
    text: str  # the human-readable text, one line
    data: bytes = b""  # what follows the text's line (the offers of an ``open``'s rsp)


class ProtocolViolation(Exception):
    """The server sent something RELP does not allow; the message says what, in one line."""


class ResponseParser:
    """Fed what the server sent, in pieces of any size; gives the responses and hints in it."""

    def __init__(self) -> None:
        self._buffer = b""
        self.server_closed = False  # a ``serverclose`` hint arrived

    def feed(self, data: bytes) -> List[Responses]:
        buffer = self._buffer + data if self._buffer else data
        found: List[Responses] = []
        position = 0
        size = len(buffer)
        while position < size:
            run = _OK_RUN.match(buffer, position)
            first = int(buffer[position:buffer.index(b" ", position)]) if run else 0
            if run is not None and first > 0:
                end = run.end()
                count = buffer.count(b"\n", position, end)
                if first + count - 1 <= MAX_TXNR and buffer[position:end] == _ok_run(first,
                                                                                    count):
                    found.append(Responses(first, count, 200, "OK"))
                    position = end
                    continue
                # Rare (TXNRs wrapping, or a server out of order): the consecutive part only.
                raw = _TXNR_OF_RUN.findall(buffer, position, end)
                consecutive = 1
                while consecutive < count and int(raw[consecutive]) == first + consecutive:
                    consecutive += 1
                found.append(Responses(first, consecutive, 200, "OK"))
                position += sum(map(len, raw[:consecutive])) + len(_OK_TAIL) * consecutive
                continue
            parsed = self._one(buffer, position)
            if parsed is None:
                break
            position, response = parsed
            if response is not None:
                found.append(response)
        self._buffer = buffer[position:]
        return found

    def _one(self, buffer: bytes, position: int) -> Optional[Tuple[int, Optional[Responses]]]:
        """The frame at ``position``: (its end, its response or None for a hint), or None when
        it is not all there yet."""
        header = _HEADER.match(buffer, position)
        if header is None:
            tail = buffer[position:position + _HEADER_LIMIT]
            if len(tail) >= _HEADER_LIMIT or not re.fullmatch(
                    rb"[0-9]{0,9}( [A-Za-z]{0,32}( [0-9]{0,9})?)?", tail):
                raise ProtocolViolation(f"not a RELP frame: {_show(tail)}")
            return None
        txnr, command, length = int(header.group(1)), header.group(2), int(header.group(3))
        if length > MAX_RESPONSE:
            raise ProtocolViolation(f"a frame of {length} bytes from the server")
        start = header.end()
        if header.group(4) == b"\n":
            if length != 0:
                raise ProtocolViolation(f"a frame with no data where {length} bytes were due")
            data, end = b"", start
        else:
            if len(buffer) < start + length + 1:
                return None
            data, end = buffer[start:start + length], start + length + 1
            if buffer[end - 1:end] != b"\n":
                raise ProtocolViolation("a frame not ended by a line feed")
        if command == b"rsp":
            if txnr == 0:
                raise ProtocolViolation("a response to transaction 0")
            line, _, rest = data.partition(b"\n")
            code_text, _, text = line.partition(b" ")
            if not re.fullmatch(rb"[0-9]{3}", code_text):
                # An empty rsp (librelp answers ``close`` so) counts as OK.
                if data:
                    raise ProtocolViolation(f"a response without a status: {_show(line)}")
                code_text = b"200"
            return end, Responses(txnr, 1, int(code_text), _show(text), rest)
        if txnr != 0:
            raise ProtocolViolation(f"a command from the server: {_show(command)}")
        if command == b"serverclose":
            self.server_closed = True
        return end, None  # other hints are ignored, as the specification allows


def _show(data: bytes) -> str:
    text = data[:80].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()


def offered_commands(data: bytes) -> List[str]:
    """The commands the server accepts, from its ``open`` response's offers."""
    for line in data.split(b"\n"):
        name, _, value = line.partition(b"=")
        if name.strip() == b"commands":
            return [v.strip().decode("ascii", "replace") for v in value.split(b",")]
    return []
