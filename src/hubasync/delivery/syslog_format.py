"""RFC 5424 syslog messages for events, and their octet-counted framing (RFC 6587 §3.4.1).
No sockets here.

One message per event::

    <PRI>1 TIMESTAMP HOSTNAME hubasync PROCID MSGID [hubasync@32473 key="KEY"] EVENT-JSON

- PRI from the ``facility`` and ``severity`` options; TIMESTAMP the time the batch is formatted
  (UTC, microseconds); HOSTNAME the ``hostname`` option or this machine's name; PROCID the pid.
- MSGID: the share's name, kept to printable US-ASCII (others become ``_``), at most 32.
- STRUCTURED-DATA: one element, SD-ID ``sd_id`` (default ``hubasync@32473``: RFC 5424 wants
  ``NAME@<private enterprise number>`` for an SD-ID that is not registered with IANA; 32473 is
  the number RFC 5612 reserves for documentation: set your organisation's own), with one
  SD-PARAM ``key``, the event's key; ``"``, ``\\`` and ``]`` in it are escaped with ``\\``.
- MSG: the event's JSON bytes as given (MSG-ANY: UTF-8 without a BOM, which JSON readers do not
  expect).

Formatting is per batch with C-level work where it counts: the keys are escaped in one pass
over all of them, and each message is one ``%`` formatting of bytes.
"""

from __future__ import annotations

import os
import socket
import time
from typing import List, Sequence

from .records import Outgoing

APP_NAME = b"hubasync"
MAX_MSGID = 32
_PRINTUS = bytes(range(33, 127))
_SANITISE = bytes(c if 33 <= c < 127 else ord("_") for c in range(256))


def printusascii(text: str, limit: int) -> bytes:
    """``text`` as printable US-ASCII (anything else becomes ``_``), at most ``limit`` octets;
    ``-`` (the nil value) when empty."""
    value = text.encode("utf-8", "replace").translate(_SANITISE)[:limit]
    return value or b"-"


def escape_param_values(values: Sequence[str]) -> List[bytes]:
    """SD-PARAM values with ``\\``, ``"`` and ``]`` escaped (RFC 5424 §6.3.3), all at once."""
    joined = "\n".join(values)
    if joined.count("\n") != len(values) - 1 and values:  # a value holds a line break itself
        return [escape_param_values([v])[0] if "\n" not in v else _escape(v.encode())
                for v in values]
    data = _escape(joined.encode("utf-8", "surrogateescape"))
    return data.split(b"\n") if values else []


def _escape(data: bytes) -> bytes:
    if b"\\" in data or b'"' in data or b"]" in data:
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"]", b"\\]")
    return data


def timestamp(now: float) -> bytes:
    """RFC 3339 in UTC with microseconds, as RFC 5424 allows (``2024-05-01T12:00:00.123456Z``)."""
    seconds = int(now)
    micro = int(round((now - seconds) * 1e6))
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode() + b".%06dZ" % micro


class MessageParts:
    """The messages of a batch: message ``i`` is ``prefix + keys[i] + b'"] ' + events[i]``."""

    SEPARATOR = b'"] '

    def __init__(self, prefix: bytes, keys: List[bytes], events: List[bytes]) -> None:
        self.prefix = prefix
        self.keys = keys
        self.events = events

    def __len__(self) -> int:
        return len(self.events)

    def size(self, index: int) -> int:
        return len(self.prefix) + len(self.keys[index]) + 3 + len(self.events[index])

    def longer_than(self, limit: int) -> List[int]:
        """The indexes of the messages longer than ``limit`` (a C-speed bound first)."""
        if not self.events or len(self.prefix) + 3 + max(map(len, self.keys)) + max(
                map(len, self.events)) <= limit:
            return []
        return [i for i in range(len(self.events)) if self.size(i) > limit]

    def only(self, indexes: Sequence[int]) -> MessageParts:
        return MessageParts(self.prefix, [self.keys[i] for i in indexes],
                            [self.events[i] for i in indexes])

    def messages(self) -> List[bytes]:
        prefix = self.prefix
        return [b'%s%s"] %s' % (prefix, key, event) for key, event in zip(self.keys,
                                                                             self.events)]


class SyslogFormat:
    """Formats a destination's events as RFC 5424 messages."""

    def __init__(self, *, facility: int, severity: int, msgid: str, sd_id: str,
                 hostname: str = "") -> None:
        if not 0 <= facility <= 23 or not 0 <= severity <= 7:
            raise ValueError("facility 0-23, severity 0-7")
        self.pri = b"<%d>" % (facility * 8 + severity)
        self.msgid = printusascii(msgid, MAX_MSGID)
        self.hostname = printusascii(hostname or socket.gethostname(), 255)
        self.sd_open = b"[" + sd_id.encode("ascii") + b' key="'

    def header(self, now: float) -> bytes:
        """Everything before the structured data, with its trailing space."""
        return b"%s1 %s %s %s %d %s " % (self.pri, timestamp(now), self.hostname, APP_NAME,
                                         os.getpid(), self.msgid)

    def prefix(self, now: float) -> bytes:
        """The part common to every message of a batch: the header and the SD element's
        opening, up to the key's value."""
        return self.header(now) + self.sd_open

    def parts(self, batch: Sequence[Outgoing], now: float) -> MessageParts:
        """The batch's messages as their parts, for framing without building each message."""
        return MessageParts(self.prefix(now), escape_param_values([item.key for item in batch]),
                            [item.event for item in batch])

    def messages(self, batch: Sequence[Outgoing], now: float) -> List[bytes]:
        """One whole RFC 5424 message per event."""
        return self.parts(batch, now).messages()

    def octet_counted(self, messages: Sequence[bytes]) -> bytes:
        """The messages framed by octet counting (RFC 6587 §3.4.1, RFC 5425): ``LEN SP MSG``."""
        return b"".join([b"%d %s" % (len(message), message) for message in messages])
