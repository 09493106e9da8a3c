"""Property tests of the code that reads untrusted header and body bytes from the hub.

Whatever a hub (or a proxy, or an attacker on the path) sends, these parts must answer with
a value or one of :mod:`hubasync.errors`' classes, never crash with anything else, and never
follow a URL off the share's origin.

The hostile inputs found by these tests (digits that ``float`` refuses, numbers too large to be
finite, deeply nested bodies, line breaks in the hub's words) are pinned by the tests at the end.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from typing import Any, Dict, Optional

import pytest
from fakehub import answer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hubasync.core.answers import (
    Fetch,
    Poll,
    Read,
    Repost,
    Retry,
    after_post,
    after_results,
    after_status,
    hub_reasons,
    hub_says,
    parse_count,
)
from hubasync.core.retry import parse_retry_after
from hubasync.core.urls import same_origin
from hubasync.errors import BadBody, HubasyncError, ProtocolError, QueryRejected
from hubasync.events.decoding import make_decoder

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Characters that str.isdigit() accepts but float() does not (pinned by tests at the end).
# http.client decodes headers as latin-1, so ¹²³ arrive.
NOT_FLOAT_DIGITS = "\u00b9\u00b2\u00b3"

# --- strategies ------------------------------------------------------------------------------

# Line breaks reach a header value only through obs-fold (a continuation line); error messages
# that quote such a value are covered by the tests at the end.
latin1 = st.characters(min_codepoint=0, max_codepoint=255,
                       blacklist_characters=NOT_FLOAT_DIGITS + "\r\n")
# At most 300 characters: a run of 309 or more digits is float("inf") (tested at the end).
header_text = st.text(alphabet=latin1, max_size=300)

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Xyz", ""]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
          "Foo", ""]
http_dates = st.builds(
    lambda d, day, mon, year, h, m, s, zone: f"{d}, {day:02d} {mon} {year} {h:02d}:{m:02d}:"
                                             f"{s:02d} {zone}",
    st.sampled_from(DAYS), st.integers(0, 40), st.sampled_from(MONTHS),
    st.integers(0, 99999), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99),
    st.sampled_from(["GMT", "UTC", "+0000", "-2359", "+2359", "+9999", "EST", "", "Z", "-0000"]),
)
numbers = st.one_of(
    st.integers(-10**6, 10**300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-0", "0x10", "1_0",
                     " 5 ", "+3", "٣", "1.5e3", "", " "]),
)
retry_after_values = st.one_of(header_text, http_dates, numbers)

REQUEST_URLS = [
    "https://hub.example.com/shares/v2/async/abc?limit=10",
    "https://hub.example.com/shares/v2/async/abc/jobs/J1",
    "https://hub.example.com:8443/pre/fix/shares/v2/async/abc/results/J1",
    "http://127.0.0.1:8080/shares/v2/async/notify/0",
    "http://[::1]:8080/shares/v2/async/abc/jobs/J1",
]
locations = st.one_of(
    header_text,
    st.sampled_from([
        "/shares/v2/async/abc/jobs/J1", "abc/jobs/J1", "../results/J1", "./x", "?q=1", "#f",
        "", " ", "//evil.example/shares/v2/async/abc/jobs/J1",
        "https://evil.example/shares/v2/async/abc/jobs/J1",
        "https://hub.example.com:444/shares/v2/async/abc/jobs/J1",
        "http://hub.example.com/shares/v2/async/abc/jobs/J1",
        "https://hub.example.com/shares/v2/async/abc/jobs/J1",
        "https://hub.example.com:443/shares/v2/async/abc/jobs/J1",
        "HTTPS://HUB.EXAMPLE.COM/shares/v2/async/abc/jobs/J1",
        "https://user:pw@hub.example.com/x", "https://hub.example.com@evil.example/x",
        "http://127.0.0.1:8081/x", "http://localhost:8080/x", "http://[::1]:8080/x",
        "http://[0:0:0:0:0:0:0:1]:8080/x", "http://[::1/x", "http://127.0.0.1:99999/x",
        "http://127.0.0.1:/x", "https://hub.example.com:0/x", "javascript:alert(1)",
        "mailto:a@b", "ftp://hub.example.com/x", "file:///etc/passwd", "\\\\evil\\x",
        "/\\evil.example/x", "///evil.example/x", "https:/x", "https:", "//", "a:b",
    ]),
    st.builds(lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "x-y"]),
              st.sampled_from(["hub.example.com", "127.0.0.1", "[::1]", "evil.example", "",
                               "hub.example.com.", "xn--d1acufc.xn--p1ai", "[fe80::1%25eth0]"]),
              st.sampled_from(["", ":", ":443", ":80", ":8080", ":8443", ":65536", ":-1"]),
              st.text(alphabet="/.?#%@:abcJ1", max_size=20)),
)
header_names = ["Location", "Retry-After", "X-STATUS", "X-Next-Token",
                "X-Last-Inserted-Token", "Content-Type"]


@st.composite
def headers(draw: Any) -> Dict[str, str]:
    chosen: Dict[str, str] = {}
    for name in header_names:
        if draw(st.booleans()):
            if name == "Location":
                chosen[name] = draw(locations)
            elif name == "Retry-After":
                chosen[name] = draw(retry_after_values)
            elif name == "X-STATUS":
                chosen[name] = draw(st.one_of(st.sampled_from(["Job expired", "JOB EXPIRED",
                                                               "job expired ", ""]),
                                              header_text))
            else:
                chosen[name] = draw(header_text)
    return chosen


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["key", "message", "type", "title", "description",
                                       "errors", "x"]) | st.text(max_size=5),
                      children, max_size=5),
    max_leaves=20,
)
hub_error_documents = st.fixed_dictionaries(
    {}, optional={"title": json_values, "description": json_values, "message": json_values,
                  "errors": st.one_of(json_values, st.lists(
                      st.fixed_dictionaries({}, optional={"key": json_values,
                                                          "message": json_values,
                                                          "type": json_values}) | json_values,
                      max_size=5))})
# Small enough that json's recursion limit cannot be reached (deep bodies: tested at the end).
bodies = st.one_of(
    st.binary(max_size=500),
    json_values.map(lambda v: json.dumps(v).encode()),
    hub_error_documents.map(lambda v: json.dumps(v).encode()),
    hub_error_documents.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8")),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"<html><body>502 Bad Gateway</body></html>", b"\xff\xfe", b"null",
                     b'{"errors": [{"key": "start", "message": "Invalid start"}]}',
                     b'{"title": "' + b"x" * 1000 + b'"}', b"line\r\nbreak\x0bv\x0cf\x1c\x85",
                     "\u2028\u2029\x85".encode()]),
)


def is_wait(value: Optional[float]) -> bool:
    return value is None or (isinstance(value, float) and math.isfinite(value) and value >= 0)


# --- parse_retry_after -----------------------------------------------------------------------


@SETTINGS
@given(retry_after_values)
@example("120")
@example("Wed, 21 Oct 2015 07:28:00 GMT")
@example("1e308")
@example("9" * 300)
def test_parse_retry_after_gives_none_or_a_finite_wait(value: str) -> None:
    seconds = parse_retry_after(value)
    assert is_wait(seconds), (value, seconds)


@SETTINGS
@given(st.integers(0, 10**6), st.floats(0, 10**6))
def test_parse_retry_after_understands_seconds(whole: int, fraction: float) -> None:
    assert parse_retry_after(str(whole)) == float(whole)
    assert parse_retry_after(f" {whole} ") == float(whole)
    assert parse_retry_after(repr(fraction)) == fraction


def test_parse_retry_after_understands_dates() -> None:
    now = 1_600_000_000.0  # 2020-09-13 12:26:40 UTC
    assert parse_retry_after("Sun, 13 Sep 2020 12:27:40 GMT", now=now) == 60.0
    assert parse_retry_after("Sun, 13 Sep 2020 12:25:40 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after("soon") is None


# --- hub_reasons and hub_says ----------------------------------------------------------------


@SETTINGS
@given(bodies)
@example(b'{"errors": [{"key": 1, "message": ["a", {"b": null}]}, 7, null]}')
@example(b'{"description": 0, "title": false, "message": {}}')
@example(b'{"errors": "x", "title": "t"}')
def test_hub_reasons_gives_pairs_of_strings(body: bytes) -> None:
    reasons = hub_reasons(body)
    assert isinstance(reasons, list)
    for pair in reasons:
        assert isinstance(pair, tuple) and len(pair) == 2
        assert all(isinstance(part, str) for part in pair)


@SETTINGS
@given(bodies, st.sampled_from(REQUEST_URLS), st.integers(100, 599))
def test_hub_says_is_one_short_line(body: bytes, url: str, status: int) -> None:
    said = hub_says(answer(url, status, body))
    assert isinstance(said, str)
    assert len(said) <= 303
    assert "\n" not in said and "\r" not in said
    assert len(said.splitlines()) <= 1
    assert said == said.strip()


def test_hub_says_keeps_the_hubs_reasons() -> None:
    body = json.dumps({"errors": [{"key": "start", "message": "Invalid start: ['foo']"}]})
    said = hub_says(answer(REQUEST_URLS[0], 400, body.encode()))
    assert said == "start: Invalid start: ['foo']"
    assert hub_says(answer(REQUEST_URLS[0], 502, b"<html>bad gateway</html>")) == ""


# --- the three phases' decisions -------------------------------------------------------------

PHASES = [
    (after_post, (Poll, Retry)),
    (after_status, (Poll, Fetch, Retry, Repost)),
    (after_results, (Read, Retry, Repost)),
]


@SETTINGS
@given(st.sampled_from(PHASES), st.sampled_from(REQUEST_URLS), st.integers(100, 599),
       headers(), bodies)
@example(PHASES[0], REQUEST_URLS[0], 202,
         {"Location": "https://evil.example/shares/v2/async/abc/jobs/J1"}, b"")
@example(PHASES[1], REQUEST_URLS[1], 302, {"Location": "//evil.example/x"}, b"")
@example(PHASES[1], REQUEST_URLS[1], 302, {"Location": "http://hub.example.com/x"}, b"")
@example(PHASES[1], REQUEST_URLS[4], 302, {"Location": "http://[::1/x"}, b"")
@example(PHASES[0], REQUEST_URLS[3], 202, {"Location": "http://127.0.0.1:99999/x"}, b"")
def test_decisions_are_an_outcome_or_a_hubasync_error(phase: tuple, url: str, status: int,
                                                      chosen: Dict[str, str],
                                                      body: bytes) -> None:
    decide, outcomes = phase
    try:
        outcome = decide(answer(url, status, body, **chosen))
    except HubasyncError as error:
        assert type(error) is not HubasyncError  # always a specific class with its exit code
        assert error.exit_code in (2, 3, 4, 5, 6)
        assert "\n" not in str(error) and "\r" not in str(error), str(error)
        return
    assert isinstance(outcome, outcomes), outcome
    if isinstance(outcome, (Poll, Fetch)):
        # a URL the client will request (with the key): never off the request's origin
        assert same_origin(outcome.url, url), (outcome.url, url)
    if isinstance(outcome, (Poll, Retry)):
        assert is_wait(outcome.retry_after)
    if isinstance(outcome, Read):
        for token in (outcome.next_token, outcome.last_inserted_token):
            assert token is None or (isinstance(token, str) and token)
    if isinstance(outcome, (Retry, Repost)):
        assert isinstance(outcome.reason, str) and outcome.reason


@SETTINGS
@given(st.sampled_from(REQUEST_URLS), locations)
def test_a_followed_location_stays_on_the_origin(url: str, location: str) -> None:
    for decide, status in ((after_post, 202), (after_status, 202), (after_status, 302)):
        try:
            outcome = decide(answer(url, status, Location=location))
        except HubasyncError as error:
            assert "origin" in str(error)
            continue
        if isinstance(outcome, (Poll, Fetch)):
            assert same_origin(outcome.url, url), (location, outcome.url)


# --- gzip ------------------------------------------------------------------------------------

GZIPPED = gzip.compress(b'[{"a": "b"}, {"c": "d"}]')


def flip(data: bytes, at: int, value: int) -> bytes:
    at %= max(len(data), 1)
    return data[:at] + bytes([value]) + data[at + 1:] if data else data


gzip_inputs = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda prefix, tail: prefix + tail,
              st.sampled_from([b"\x1f\x8b", b"\x1f\x8b\x08", b"\x1f\x8b\x08\x00" + b"\0" * 6,
                               GZIPPED[:10]]),
              st.binary(max_size=500)),
    st.builds(flip, st.just(GZIPPED), st.integers(0, 10**6), st.integers(0, 255)),
    st.builds(lambda n: GZIPPED[:n], st.integers(0, len(GZIPPED))),
    st.builds(lambda extra: GZIPPED + extra, st.binary(max_size=100)),
    st.builds(lambda data: zlib.compress(data), st.binary(max_size=100)),  # zlib, not gzip
)


@SETTINGS
@given(gzip_inputs, st.lists(st.integers(1, 64), max_size=10))
def test_gzip_decoder_raises_only_bad_body(data: bytes, cuts: list) -> None:
    decoder = make_decoder("gzip")
    pieces, at = [], 0
    for size in cuts:  # fed in pieces of any size, as the body arrives
        pieces.append(data[at:at + size])
        at += size
    pieces.append(data[at:])
    out = b""
    try:
        for piece in pieces:
            out += b"".join(decoder.pieces(piece))
        out += decoder.finish()
    except BadBody:
        return
    assert isinstance(out, bytes)


@SETTINGS
@given(st.binary(max_size=3000), st.integers(1, 4))
def test_gzip_decoder_round_trips_any_members(payload: bytes, members: int) -> None:
    parts = [payload[i::members] for i in range(members)]
    body = b"".join(gzip.compress(part) for part in parts)
    decoder = make_decoder("gzip")
    out = b"".join(b"".join(decoder.pieces(body[i:i + 97])) for i in range(0, len(body), 97))
    assert out + decoder.finish() == b"".join(parts)


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "compress"])
def test_unknown_content_encodings_are_bad_body(encoding: str) -> None:
    with pytest.raises(BadBody):
        make_decoder(encoding)


# --- hostile inputs that once crashed or split a message ---------------------------------------


@pytest.mark.parametrize("value", list(NOT_FLOAT_DIGITS) + ["1\u00b2", "\u2460"])
def test_parse_retry_after_on_non_decimal_digits(value: str) -> None:
    assert is_wait(parse_retry_after(value))


def test_after_post_with_a_superscript_retry_after() -> None:
    outcome = after_post(answer(REQUEST_URLS[0], 503, Retry_After="\u00b2"))
    assert isinstance(outcome, Retry)


def test_parse_retry_after_on_a_huge_number_of_seconds() -> None:
    assert is_wait(parse_retry_after("9" * 400))


DEEP = b"[" * 100_000


@pytest.mark.parametrize("body", [DEEP, b'{"errors": ' + DEEP, b'{"title": ' + b'{"a": ' * 50_000])
def test_hub_reasons_on_a_deeply_nested_body(body: bytes) -> None:
    assert hub_reasons(body) == []


def test_after_post_with_a_deeply_nested_400_body() -> None:
    with pytest.raises(QueryRejected):
        after_post(answer(REQUEST_URLS[0], 400, DEEP))


@pytest.mark.parametrize("decide, status, chosen, body, expected", [
    (after_post, 400, {},
     json.dumps({"errors": [{"key": "start", "message": "bad\nEVIL-TOKEN"}]}).encode(),
     QueryRejected),
    (after_status, 400, {},
     json.dumps({"errors": [{"key": "token", "message": "Invalid token\r\nX"}]}).encode(),
     QueryRejected),
    (after_post, 302, {"Location": "https://hub.example.com/elsewhere\r\n  EVIL-TOKEN"}, b"",
     ProtocolError),
])
def test_errors_are_one_line(decide: Any, status: int, chosen: Dict[str, str], body: bytes,
                             expected: type) -> None:
    with pytest.raises(expected) as caught:
        decide(answer(REQUEST_URLS[0], status, body, **chosen))
    assert len(str(caught.value).splitlines()) == 1, str(caught.value)


def test_parse_count_on_a_deeply_nested_body() -> None:
    with pytest.raises(BadBody):
        parse_count(DEEP)
