"""RFC 5424 messages and octet-counted framing, without a network."""

from __future__ import annotations

import os
import re

from hubasync.delivery.records import Outgoing
from hubasync.delivery.syslog_format import (
    SyslogFormat,
    escape_param_values,
    printusascii,
    timestamp,
)

NOW = 1_700_000_000.25


def make(msgid: str = "demo") -> SyslogFormat:
    return SyslogFormat(facility=16, severity=5, msgid=msgid, sd_id="hubasync@32473",
                        hostname="collector.example")


def test_a_message_has_every_field_in_order() -> None:
    [message] = make().messages([Outgoing(1, "key-1", b'{"a": 1}')], NOW)
    assert message == (b'<133>1 2023-11-14T22:13:20.250000Z collector.example hubasync %d demo '
                       b'[hubasync@32473 key="key-1"] {"a": 1}' % os.getpid())


def test_param_values_escape_quote_backslash_and_bracket() -> None:
    assert escape_param_values(['a"b', "c\\d", "e]f", "plain", ""]) == [
        b'a\\"b', b"c\\\\d", b"e\\]f", b"plain", b""]
    assert escape_param_values(["two\nlines", 'x"']) == [b"two\nlines", b'x\\"']
    assert escape_param_values([]) == []
    [message] = make().messages([Outgoing(1, 'k"]\\', b"{}")], NOW)
    assert b'key="k\\"\\]\\\\"] {}' in message


def test_msgid_is_printable_ascii_of_at_most_32() -> None:
    assert printusascii("demo share/ÄÖ", 32) == b"demo_share/____"
    assert printusascii("x" * 40, 32) == b"x" * 32
    assert printusascii("", 32) == b"-"
    assert make("s p").msgid == b"s_p"
    assert make("y" * 40).msgid == b"y" * 32


def test_non_ascii_events_and_keys_pass_as_utf8() -> None:
    [message] = make().messages([Outgoing(1, "ключ", '{"as name": "Müller"}'.encode())], NOW)
    assert 'key="ключ"'.encode() in message and "Müller".encode() in message


def test_octet_counting_frames_each_message_by_its_length() -> None:
    messages = make().messages([Outgoing(i, f"k{i}", b'{"n":%d}' % i) for i in range(3)], NOW)
    framed = make().octet_counted(messages)
    position, found = 0, []
    while position < len(framed):
        space = framed.index(b" ", position)
        length = int(framed[position:space])
        found.append(framed[space + 1:space + 1 + length])
        position = space + 1 + length
    assert found == messages


def test_timestamps_are_rfc3339_utc_with_microseconds() -> None:
    assert timestamp(0.0) == b"1970-01-01T00:00:00.000000Z"
    assert timestamp(1.9999996) == b"1970-01-01T00:00:02.000000Z"
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", timestamp(NOW))
