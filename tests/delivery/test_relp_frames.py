"""RELP framing and response parsing, without a network."""

from __future__ import annotations

import pytest

from hubasync.delivery.relp_frames import (
    MAX_TXNR,
    ProtocolViolation,
    ResponseParser,
    Responses,
    frame,
    offered_commands,
    offers,
    syslog_frames,
    txnr_after,
)

OPEN_ANSWER = (b"1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,"
               b"http://librelp.adiscon.com\ncommands=syslog\n")


def test_frames_are_txnr_command_length_data_lf() -> None:
    assert frame(1, b"open", b"abc") == b"1 open 3 abc\n"
    assert frame(7, b"close") == b"7 close 0\n"
    assert syslog_frames(5, [b"ab", b"cde"]) == b"5 syslog 2 ab\n6 syslog 3 cde\n"
    data = offers("hubasync", "1.2")
    assert data.split(b"\n")[0] == b"relp_version=0"
    assert b"\ncommands=syslog" in data and b"relp_software=hubasync,1.2," in data


def test_txnr_wraps_after_999999999_to_1() -> None:
    assert txnr_after(MAX_TXNR, 1) == 1 and txnr_after(MAX_TXNR - 1, 3) == 2
    assert syslog_frames(MAX_TXNR, [b"a", b"b"]) == b"999999999 syslog 1 a\n1 syslog 1 b\n"


def test_the_open_answer_gives_its_offers() -> None:
    [answer] = ResponseParser().feed(OPEN_ANSWER)
    assert (answer.first, answer.code) == (1, 200)
    assert offered_commands(answer.data) == ["syslog"]


def test_a_run_of_oks_is_one_response_and_reads_may_cut_anywhere() -> None:
    data = b"".join(b"%d rsp 6 200 OK\n" % t for t in range(2, 2002))
    whole = ResponseParser().feed(data)
    assert whole == [Responses(2, 2000, 200, "OK")]
    for size in (1, 7, 13, 4096):
        parser = ResponseParser()
        found = []
        for start in range(0, len(data), size):
            found.extend(parser.feed(data[start:start + size]))
        assert [r.code for r in found] == [200] * len(found)
        assert sum(r.count for r in found) == 2000
        expected = 2
        for response in found:
            assert response.first == expected
            expected += response.count


def test_other_codes_hints_and_empty_answers() -> None:
    parser = ResponseParser()
    found = parser.feed(b"2 rsp 6 200 OK\n3 rsp 20 500 command disabled\n4 rsp 9 "
                        b"403 no no\n5 rsp 0\n0 serverclose 0\n")
    assert found == [Responses(2, 1, 200, "OK"), Responses(3, 1, 500, "command disabled"),
                     Responses(4, 1, 403, "no no"), Responses(5, 1, 200, "")]
    assert parser.server_closed


def test_out_of_order_oks_are_not_merged() -> None:
    found = ResponseParser().feed(b"1 rsp 6 200 OK\n3 rsp 6 200 OK\n2 rsp 6 200 OK\n")
    assert [(r.first, r.count) for r in found] == [(1, 1), (3, 1), (2, 1)]
    wrapped = ResponseParser().feed(b"999999999 rsp 6 200 OK\n1 rsp 6 200 OK\n2 rsp 6 200 OK\n")
    assert [(r.first, r.count) for r in wrapped] == [(999999999, 1), (1, 2)]


@pytest.mark.parametrize("data", [
    b"x rsp 6 200 OK\n",
    b"1 rsp 6 200 OK!",
    b"1 rsp 3 2000\n",  # data longer than said: no trailer where due
    b"1 rsp 999999 " + b"x" * 10,  # larger than any answer
    b"5 syslog 2 hi\n",  # a command from the server
    b"0 rsp 6 200 OK\n",
    b"1 rsp 5 hello\n",  # no status
    b"12345678901 rsp 6 200 OK\n",
])
def test_what_relp_does_not_allow_is_a_violation(data: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        ResponseParser().feed(data)


def test_an_incomplete_frame_waits_for_more() -> None:
    parser = ResponseParser()
    assert parser.feed(b"12 rsp 6 20") == []
    assert parser.feed(b"0 OK\n") == [Responses(12, 1, 200, "OK")]
    assert parser.feed(b"13") == [] and parser.feed(b" rsp") == []
