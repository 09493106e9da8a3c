"""Tests of hubasync.stream: gzip decoding and the incremental JSON array splitter."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubasync.core.bounds import DEFAULTS, size_text
from hubasync.errors import BadBody, BodyTooLarge, HubUnavailable
from hubasync.events.decoding import make_decoder
from hubasync.events.splitter import (
    MAX_DEPTH,
    EventSplitter,
    compact_line,
    decode_event,
)


def split_all(body: bytes, sizes: Optional[List[int]] = None, strict: bool = False,
              cap: int = DEFAULTS.max_event_size) -> List[bytes]:
    """Feed ``body`` in chunks of the given sizes (cycled), then finish."""
    splitter = EventSplitter(strict=strict, max_event_size=cap)
    events: List[bytes] = []
    sizes = sizes or [len(body) or 1]
    pos = i = 0
    while pos < len(body):
        size = max(1, sizes[i % len(sizes)])
        events += splitter.feed(body[pos : pos + size])
        pos += size
        i += 1
    splitter.finish()
    assert splitter.count == len(events)
    return events


def split_every_way(body: bytes, strict: bool = False) -> List[bytes]:
    """Split ``body`` whole, byte by byte and in a few odd chunk sizes; all must agree."""
    whole = split_all(body, strict=strict)
    for sizes in ([1], [2], [3, 7], [5, 1, 13], [64]):
        assert split_all(body, sizes, strict=strict) == whole
    return whole


def gzip(data: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


# --- valid bodies -----------------------------------------------------------------------------

VALID = [
    pytest.param(b"[]", [], id="empty"),
    pytest.param(b" \r\n\t[ \n ] \n", [], id="empty-with-whitespace"),
    pytest.param(b"[{}]", [b"{}"], id="empty-object"),
    pytest.param(b'[{"a":"b"},{"c":"d"}]', [b'{"a":"b"}', b'{"c":"d"}'], id="compact"),
    pytest.param(
        b'[\n  {\n    "a": "b"\n  } ,\n\t{"c" : ["d", "e"]}\n]\n',
        [b'{\n    "a": "b"\n  }', b'{"c" : ["d", "e"]}'],
        id="pretty",
    ),
    pytest.param(
        b'[{"a":"}{][,\\"\\\\"},{"b":"\\\\"}]',
        [b'{"a":"}{][,\\"\\\\"}', b'{"b":"\\\\"}'],
        id="structure-inside-strings",
    ),
    pytest.param(b'[{"a":"x}, {y"}]', [b'{"a":"x}, {y"}'], id="separator-inside-string"),
    pytest.param(
        '[{"ä":"\u00fc \\u00fc 日本 😀"}]'.encode(),
        ['{"ä":"\u00fc \\u00fc 日本 😀"}'.encode()],
        id="utf8-and-escapes",
    ),
    pytest.param(
        b'[{"a":{"b":[{"c":"}"},[]]},"d":[1,2.5e3,true,false,null]}]',
        [b'{"a":{"b":[{"c":"}"},[]]},"d":[1,2.5e3,true,false,null]}'],
        id="nested-and-literals",
    ),
    pytest.param(b'[{"a":"b","a":"c"}]', [b'{"a":"b","a":"c"}'], id="duplicate-keys"),
]


@pytest.mark.parametrize("body, expected", VALID)
@pytest.mark.parametrize("strict", [False, True])
def test_valid_bodies(body: bytes, expected: List[bytes], strict: bool) -> None:
    assert split_every_way(body, strict=strict) == expected


def test_many_flat_events_take_the_fast_path_and_agree() -> None:
    events = [
        {"observation time": f"2024-01-01 00:00:{i % 60:02d}Z", "ip": f"10.0.0.{i % 256}",
         "domain name": [f"h{i}.example", "x,y:z"], "note": 'say "hi" \\ ü'}
        for i in range(3000)
    ]
    body = json.dumps(events).encode()
    for sizes in ([len(body)], [65536], [4096, 17], [1000]):
        raw = split_all(body, sizes)
        assert [json.loads(r) for r in raw] == events
    raw = split_all(body, [65536])
    assert raw == [json.dumps(e).encode() for e in events]


# --- malformed bodies -------------------------------------------------------------------------

MALFORMED = [
    pytest.param(b"", id="empty-body"),
    pytest.param(b"   ", id="only-whitespace"),
    pytest.param(b"x[]", id="garbage-before-array"),
    pytest.param(b"\xef\xbb\xbf[]", id="bom"),
    pytest.param(b'{"a":"b"}', id="object-not-array"),
    pytest.param(b"[{} x {}]", id="text-between-events"),
    pytest.param(b"[{},,{}]", id="two-commas"),
    pytest.param(b"[{}{}]", id="missing-comma"),
    pytest.param(b"[{},]", id="trailing-comma"),
    pytest.param(b"[,{}]", id="leading-comma"),
    pytest.param(b"[{}", id="cut-after-event"),
    pytest.param(b"[{},", id="cut-after-comma"),
    pytest.param(b'[{"a":"b"', id="cut-inside-event"),
    pytest.param(b'[{"a":"b', id="cut-inside-string"),
    pytest.param(b'[{"a":"b\\', id="cut-inside-escape"),
    pytest.param(b"[", id="cut-after-bracket"),
    pytest.param(b"[1]", id="number-element"),
    pytest.param(b'["a"]', id="string-element"),
    pytest.param(b"[[]]", id="array-element"),
    pytest.param(b"[null]", id="null-element"),
    pytest.param(b'[{"a":"b"}, "c"]', id="string-after-object"),
    pytest.param(b'[{"a":["b"}]', id="unbalanced-bracket"),
    pytest.param(b'[{"a":"b"]]', id="bracket-closes-object"),
    pytest.param(b'[{"a":{"b":"c"}]', id="unclosed-inner-object"),
    pytest.param(b'[{"a":"b}]', id="unclosed-string"),
    pytest.param(b'[{"a":"b""}]', id="extra-quote"),
    pytest.param(b"[{}]x", id="garbage-after-array"),
    pytest.param(b"[{}] []", id="second-array"),
    pytest.param(b"[{}]]", id="extra-bracket"),
    pytest.param(b'[{"a":{"b":1}, "c":x}]', id="bare-word-nested"),
    pytest.param(b'[{"a":{"b":"\\x"}}]', id="bad-escape-nested"),
]

# What only strict mode catches: the fast path does not look inside strings, at literals,
# or at the bytes between tokens (see the module docstring).
STRICT_ONLY = [
    pytest.param(b'[{"a":"\\x"}]', id="bad-escape"),
    pytest.param(b'[{"a":x}]', id="bare-word"),
    pytest.param(b'[{"a" "b"}]', id="missing-colon"),
    pytest.param(b'[{"a":"b" "c":"d"}]', id="missing-comma-in-object"),
    pytest.param(b'[{"a":"b",}]', id="trailing-comma-in-object"),
    pytest.param(b'[{"a":"\x01"}]', id="control-character"),
    pytest.param(b'[{"a":}]', id="missing-value"),
    pytest.param(b'[{"a":"\xff"}]', id="invalid-utf8"),
    pytest.param(b'[{"a":"\xc3"}]', id="truncated-utf8"),
    pytest.param(b'[{"a":"b"}x,{"c":"d"}]', id="stray-byte-between-events"),
]


def assert_bad(body: bytes, sizes: Optional[List[int]] = None, strict: bool = False) -> None:
    with pytest.raises(BadBody):
        split_all(body, sizes, strict=strict)


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("strict", [False, True])
def test_malformed_bodies(body: bytes, strict: bool) -> None:
    for sizes in (None, [1], [3, 7]):
        assert_bad(body, sizes, strict=strict)


@pytest.mark.parametrize("body", STRICT_ONLY)
def test_strict_catches_what_the_fast_path_does_not(body: bytes) -> None:
    assert_bad(body, strict=True)
    # When the event goes through the exact path (here: any nested object nearby),
    # it is validated even without strict.
    nested = body[:-2] + b', "n": {"m": "o"}}]'
    assert_bad(nested)


def test_fast_path_limits_are_as_documented() -> None:
    # Pinned so that a change in what the fast path checks is a deliberate one.
    # (An invalid escape or a stray byte between events may still be caught on the way.)
    for param in STRICT_ONLY:
        (body,) = param.values
        assert isinstance(body, bytes)
        if param.id in ("bad-escape", "stray-byte-between-events"):
            continue
        assert len(split_all(body)) == 1


def test_malformed_flat_batch_after_good_events() -> None:
    good = b", ".join(json.dumps({"k": str(i), "v": ["a", "b"]}).encode() for i in range(2000))
    for bad in (b'{"a":["b"}', b'{"a":"b}', b'{"a":"b"]', b"{} x", b'{"a":"b"} {"c":"d"}'):
        body = b"[" + good + b", " + bad + b", " + good + b"]"
        assert_bad(body, [65536])
        assert_bad(body)


def test_failed_splitter_stays_failed() -> None:
    splitter = EventSplitter()
    with pytest.raises(BadBody):
        splitter.feed(b"[x")
    with pytest.raises(BadBody):
        splitter.feed(b"{}]")
    with pytest.raises(BadBody):
        splitter.finish()


def test_events_are_returned_as_soon_as_complete() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'[{"a":"b"}, {"c"') == [b'{"a":"b"}']
    assert splitter.feed(b':"d"}') == []  # complete, but is it the last? known with what follows
    assert splitter.feed(b"]") == [b'{"c":"d"}']
    assert splitter.count == 2
    splitter.finish()


def test_large_event_in_small_chunks() -> None:
    event = {"big": "x" * 600_000, "list": ["y" * 1000] * 300, "n": {"m": "}"}}
    body = json.dumps([event, {"a": "b"}]).encode()
    raw = split_all(body, [4096])
    assert [json.loads(r) for r in raw] == [event, {"a": "b"}]


# --- properties -------------------------------------------------------------------------------

NO_SURROGATES: Any = ("Cs",)
JSON_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from('{}[]",:\\/ \n\tü€😀"\u2028\x00\x1f'),
        st.characters(exclude_categories=NO_SURROGATES),
    ),
    max_size=12,
)
JSON_VALUE = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), JSON_TEXT,
        st.floats(allow_nan=False, allow_infinity=False),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(JSON_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
FLAT_VALUE = st.one_of(JSON_TEXT, st.lists(JSON_TEXT, max_size=4))
EVENT = st.one_of(
    st.dictionaries(JSON_TEXT, FLAT_VALUE, max_size=6),
    st.dictionaries(JSON_TEXT, JSON_VALUE, max_size=6),
)
WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


@st.composite
def serialized_bodies(draw: st.DrawFn) -> tuple[bytes, List[Dict[str, Any]], List[bytes]]:
    events = draw(st.lists(EVENT, max_size=8))
    texts: List[bytes] = []
    for event in events:
        indent = draw(st.sampled_from([None, 0, 2]))
        separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
        ensure_ascii = draw(st.booleans())
        text = json.dumps(event, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
        texts.append(text.encode())
    parts = [draw(WHITESPACE), "["]
    for i, encoded in enumerate(texts):
        parts.append(draw(WHITESPACE))
        parts.append(encoded.decode())
        parts.append(draw(WHITESPACE))
        if i < len(texts) - 1:
            parts.append(",")
    parts += [draw(WHITESPACE), "]", draw(WHITESPACE)]
    return "".join(parts).encode(), events, texts


@st.composite
def chunk_sizes(draw: st.DrawFn) -> List[int]:
    return draw(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(serialized_bodies(), chunk_sizes(), st.booleans())
def test_property_splits_exactly(
    case: tuple[bytes, List[Dict[str, Any]], List[bytes]], sizes: List[int], strict: bool
) -> None:
    body, events, texts = case
    raw = split_all(body, sizes, strict=strict)
    assert raw == texts
    assert [json.loads(r) for r in raw] == events
    assert [decode_event(r) for r in raw] == events
    for r in raw:
        line = compact_line(r)
        assert b"\n" not in line and b"\r" not in line
        assert json.loads(line) == json.loads(r)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(serialized_bodies(), chunk_sizes(), st.data())
def test_property_any_strict_prefix_fails(
    case: tuple[bytes, List[Dict[str, Any]], List[bytes]], sizes: List[int], data: st.DataObject
) -> None:
    body, events, _ = case
    end = body.rindex(b"]")
    cut = data.draw(st.integers(min_value=0, max_value=end))
    assert_bad(body[:cut], sizes)


@settings(max_examples=300)
@given(st.binary(max_size=200), chunk_sizes(), st.booleans())
def test_property_garbage_raises_only_badbody(
    garbage: bytes, sizes: List[int], strict: bool
) -> None:
    try:
        events = split_all(garbage, sizes, strict=strict)
    except BadBody:
        return
    # garbage let through is an array of objects: its events are the array's, each an object
    assert garbage.strip()[:1] == b"[" and garbage.strip()[-1:] == b"]"
    for event in events:
        assert event[:1] == b"{" and event[-1:] == b"}"
    if strict:
        parsed = json.loads(garbage)
        assert [json.loads(event) for event in events] == parsed


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b" ", b"a",
                              b'"a"', b"1", b"\xc3", b"\xa4", b"\n"]), max_size=40),
    chunk_sizes(),
)
def test_property_json_like_garbage_raises_only_badbody(
    tokens: List[bytes], sizes: List[int]
) -> None:
    body = b"".join(tokens)
    try:
        events = split_all(body, sizes)
    except BadBody:
        return
    # Accepted bodies are arrays whose events are at least UTF-8 JSON-ish objects.
    for event in events:
        assert event.startswith(b"{") and event.endswith(b"}")
        event.decode("utf-8")


# --- decode_event and compact_line --------------------------------------------------------------


def test_decode_event() -> None:
    assert decode_event(b'{"a": ["b"]}') == {"a": ["b"]}
    for bad in (b"[]", b'"a"', b"1", b"{", b'{"a":"\xff"}', b"", b"[" * 100000):
        with pytest.raises(BadBody):
            decode_event(bad)


def test_compact_line() -> None:
    one_line = b'{"a": "b  c"}'
    assert compact_line(one_line) is one_line
    pretty = b'{\r\n  "a" : "b  c",\n  "d": [1, 2.50]\n}'
    assert compact_line(pretty) == b'{"a":"b  c","d":[1,2.50]}'
    assert compact_line(b'{\n"a\\"":"\\\\" ,"b":"\\n"}') == b'{"a\\"":"\\\\","b":"\\n"}'
    with pytest.raises(BadBody):
        compact_line(b'{"a":"b\nc"}')


# --- gzip ---------------------------------------------------------------------------------------


def decode(decoder_name: Optional[str], data: bytes, size: int) -> bytes:
    decoder = make_decoder(decoder_name)
    out = [b"".join(decoder.pieces(data[i : i + size])) for i in range(0, len(data), size)]
    out.append(decoder.finish())
    return b"".join(out)


@pytest.mark.parametrize("name", ["gzip", "x-gzip", "GZIP", " gzip "])
def test_gzip_names(name: str) -> None:
    assert decode(name, gzip(b"[]"), 3) == b"[]"


@pytest.mark.parametrize("name", [None, "", "identity"])
def test_identity(name: Optional[str]) -> None:
    assert decode(name, b"[{}]", 2) == b"[{}]"


@pytest.mark.parametrize("name", ["br", "deflate", "gzip, br", "zstd"])
def test_unknown_encoding(name: str) -> None:
    with pytest.raises(BadBody):
        make_decoder(name)


@settings(max_examples=100)
@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=300))
def test_property_gzip_round_trip(data: bytes, size: int) -> None:
    assert decode("gzip", gzip(data), size) == data


@settings(max_examples=100)
@given(st.binary(min_size=0, max_size=2000), st.data())
def test_property_truncated_gzip(data: bytes, draw: st.DataObject) -> None:
    compressed = gzip(data)
    cut = draw.draw(st.integers(min_value=0, max_value=len(compressed) - 1))
    with pytest.raises(BadBody):
        decode("gzip", compressed[:cut], 7)


@settings(max_examples=100)
@given(st.binary(min_size=1, max_size=2000), st.data())
def test_property_corrupted_gzip(data: bytes, draw: st.DataObject) -> None:
    compressed = bytearray(gzip(data))
    at = draw.draw(st.integers(min_value=10, max_value=len(compressed) - 1))
    compressed[at] ^= draw.draw(st.integers(min_value=1, max_value=255))
    # A flipped byte in the deflate data or the CRC-32/size trailer is caught, unless it only
    # touched bits the format ignores (padding after the last block): then the data is intact.
    try:
        assert decode("gzip", bytes(compressed), 13) == data
    except BadBody:
        pass


def test_corrupted_gzip_examples() -> None:
    compressed = bytearray(gzip(b"[{}]" * 100))
    for at in (12, len(compressed) // 2, len(compressed) - 8, len(compressed) - 1):
        damaged = bytearray(compressed)
        damaged[at] ^= 0x55
        with pytest.raises(BadBody):
            decode("gzip", bytes(damaged), 13)


@pytest.mark.parametrize("trailer", [b"x", b"\x00", b"\x00" * 8, b"garbage after", b"\x1f"])
def test_gzip_trailing_garbage(trailer: bytes) -> None:
    with pytest.raises(BadBody):
        decode("gzip", gzip(b"[{}]") + trailer, 5)


def test_gzip_not_gzip() -> None:
    with pytest.raises(BadBody):
        decode("gzip", b"[{}]", 4)
    with pytest.raises(BadBody):
        decode("gzip", b"", 4)


def test_gzip_concatenated_members() -> None:
    assert decode("gzip", gzip(b"[{},") + gzip(b"{}]"), 3) == b"[{},{}]"


def test_gzip_then_split() -> None:
    events = [{"i": str(i), "s": "ä" * (i % 7)} for i in range(5000)]
    compressed = gzip(json.dumps(events).encode())
    decoder = make_decoder("gzip")
    splitter = EventSplitter()
    raw: List[bytes] = []
    for i in range(0, len(compressed), 1000):
        raw += splitter.feed(b"".join(decoder.pieces(compressed[i : i + 1000])))
    raw += splitter.feed(decoder.finish())
    splitter.finish()
    assert [json.loads(r) for r in raw] == events


@pytest.mark.parametrize("body", [
    b'[{"a":"x"},{"b":"},{"},{"c":"y"},{"d":"z"}]',
    b'[{"a":"x"},\n{"b":"},\\n{"},\n{"c":"y"},\n{"d":"z"}]',
    b'[{"a":"x"}, {"b":"}, {"}, {"c":"y"}, {"d":"z"}]',
    b'[{"a":"x"},{\n"b":"y"},{"c":"z"},{"d":"w"}]',
])
def test_batch_lines_are_one_event_a_line_whatever_the_separator(body: bytes) -> None:
    splitter = EventSplitter()
    batches = [splitter.feed_batch(body[:9]), splitter.feed_batch(body[9:])]
    splitter.finish()
    lines = b"\n".join(batch.lines() for batch in batches if batch).split(b"\n")
    assert [json.loads(line) for line in lines] == json.loads(body)
    joined = b",\n".join(batch.lines(b",\n") for batch in batches if batch)
    assert json.loads(b"[" + joined + b"]") == json.loads(body)


# --- bounds against a hostile body ---------------------------------------------------------------

CHUNKINGS = [None, [1], [3, 7], [4096], [65536]]


def event_of_size(size: int, filler: bytes = b"x") -> bytes:
    """A flat event of exactly ``size`` bytes: one string of ``filler``."""
    return b'{"a":"' + filler * (size - 8) + b'"}'


def list_event_of_size(size: int) -> bytes:
    """``{"a":[[],[],...,[]]}`` padded with spaces to exactly ``size`` bytes: slow path."""
    head, tail = b'{"a":[', b"[]]}"
    items = (size - len(head) - len(tail)) // 3
    event = head + b"[]," * items + tail
    return event[:-1] + b" " * (size - len(event)) + b"}"


@pytest.mark.parametrize("sizes", CHUNKINGS)
@pytest.mark.parametrize("make", [event_of_size, list_event_of_size], ids=["flat", "nested"])
def test_an_event_of_exactly_the_cap_passes_one_byte_more_does_not(
        sizes: Optional[List[int]], make: Any) -> None:
    cap = 100_000
    small = b'{"b":1}'
    exact = make(cap)
    assert len(exact) == cap
    body = b"[" + small + b"," + exact + b"," + small + b"]"
    assert split_all(body, sizes, cap=cap) == [small, exact, small]
    over = make(cap + 1)
    with pytest.raises(BodyTooLarge) as caught:
        split_all(b"[" + small + b"," + over + b"," + small + b"]", sizes, cap=cap)
    message = str(caught.value)
    assert message.startswith(f"an event larger than {cap:,} bytes (--max-event-size): ")
    assert "from byte 9 of the body" in message


def test_body_too_large_is_exit_6_and_not_transient() -> None:
    assert issubclass(BodyTooLarge, HubUnavailable)
    assert not issubclass(BodyTooLarge, BadBody)  # BadBody is retried
    assert BodyTooLarge.exit_code == 6
    assert BodyTooLarge.transient is False


def test_default_cap_is_documented_value() -> None:
    assert DEFAULTS.max_event_size == 4 << 20
    assert size_text(DEFAULTS.max_event_size) == "4 MiB"
    assert size_text(1536) == "1,536 bytes"
    assert size_text(1 << 30) == "1 GiB"


@pytest.mark.parametrize("strict", [False, True])
def test_many_small_events_pass_a_small_cap(strict: bool) -> None:
    # Runs of events longer than the cap are fine: only one event may not exceed it.
    events = [json.dumps({"i": i, "s": "y" * (i % 50)}, separators=(",", ":")).encode()
              for i in range(3000)]
    body = b"[" + b",".join(events) + b"]"
    for sizes in (None, [5000], [777]):
        assert split_all(body, sizes, strict=strict, cap=100) == events
    big = b'{"i":-1,"s":"' + b"z" * 100 + b'"}'
    with pytest.raises(BodyTooLarge):
        split_all(b"[" + b",".join(events[:2000] + [big] + events[2000:]) + b"]", cap=100)


def test_partial_event_kept_between_feeds_never_grows_past_the_cap() -> None:
    cap = 1 << 20
    chunk = b"x" * 65536
    for opening in (b'[{"a":"', b'[{"a":[{"b":"'):  # fast path, then exact scanner
        splitter = EventSplitter(max_event_size=cap)
        splitter.feed_batch(opening)
        fed = len(opening)
        with pytest.raises(BodyTooLarge):
            while fed < 4 * cap:
                splitter.feed_batch(chunk)
                fed += len(chunk)
                kept = len(splitter._tail) + sum(map(len, splitter._parts))  # noqa: SLF001
                assert kept <= cap
        assert fed <= cap + len(chunk) + len(opening)
        with pytest.raises(BadBody):  # failed for good
            splitter.feed_batch(b"}]")


@pytest.mark.parametrize("sizes", CHUNKINGS)
@pytest.mark.parametrize("where", ["before", "after-open", "between", "after-close"])
def test_whitespace_between_events_is_bounded_by_the_cap(
        sizes: Optional[List[int]], where: str) -> None:
    cap = 50_000
    event = b'{"a":1}'

    def body(gap: bytes) -> bytes:
        before = gap if where == "before" else b""
        after_open = gap if where == "after-open" else b""
        between = gap if where == "between" else b""
        after_close = gap if where == "after-close" else b""
        return (before + b"[" + after_open + event + between + b"," + event + b"]"
                + after_close)

    spaces = b" \t\r\n" * (cap // 4)
    assert split_all(body(spaces), sizes, cap=cap) == [event, event]
    with pytest.raises(BodyTooLarge) as caught:
        split_all(body(spaces + b" "), sizes, cap=cap)
    assert str(caught.value).startswith(
        "more than 50,000 bytes of whitespace between two events (--max-event-size): ")


def test_whitespace_between_gaps_does_not_add_up() -> None:
    cap = 1000
    gap = b" " * cap
    body = gap + b"[" + gap + b"{}" + gap + b"," + gap + b"{}" + gap + b"]" + gap
    assert split_all(body, [333], cap=cap) == [b"{}", b"{}"]


def test_whitespace_gap_ends_at_a_token_that_starts_a_chunk() -> None:
    cap = 1000
    gap = b" " * cap
    for pieces, expected in (
            ([gap, b"[", gap, b"{}", gap, b"]", gap], [b"{}"]),
            ([gap, b'[{"a":1}', gap, b',{"b":{"c":2}}', gap, b"]", gap],
             [b'{"a":1}', b'{"b":{"c":2}}'])):
        splitter = EventSplitter(max_event_size=cap)
        events: List[bytes] = []
        for piece in pieces:  # each gap alone is the cap: they must not add up
            events += splitter.feed(piece)
        splitter.finish()
        assert events == expected
        assert splitter.count == len(expected)


def test_a_flood_of_whitespace_is_skipped_quickly() -> None:
    # 64 MiB of whitespace after the array, under a 1 GiB cap: skipped at C speed. Byte by
    # byte in Python this takes tens of seconds; the bound is generous for a loaded machine.
    splitter = EventSplitter(max_event_size=1 << 30)
    splitter.feed_batch(b'[{"a":1}]')
    chunk = b" " * (1 << 20)
    started = time.perf_counter()
    for _ in range(64):
        splitter.feed_batch(chunk)
    splitter.finish()
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("sizes", [None, [1], [100]])
def test_nesting_is_bounded(sizes: Optional[List[int]]) -> None:
    # The event's own braces count: MAX_DEPTH levels in all pass, one more does not.
    def nested(depth: int) -> bytes:
        return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    assert split_all(b"[" + nested(MAX_DEPTH) + b"]", sizes) == [nested(MAX_DEPTH)]
    for body in (b"[" + nested(MAX_DEPTH + 1) + b"]",
                 b"[{" + b"[" * 100000 + b"]" * 100000 + b"}]",
                 b'[{"a":' + b"[" * 10_000_000):  # cut short, but too deep first
        with pytest.raises(BodyTooLarge) as caught:
            split_all(body, sizes)
        assert str(caught.value).startswith(f"an event nested deeper than {MAX_DEPTH} levels")


@pytest.mark.parametrize("strict", [False, True])
def test_no_bound_error_from_small_garbage(strict: bool) -> None:
    # BodyTooLarge needs a body beyond a bound: the garbage properties above stay BadBody.
    with pytest.raises(BadBody):
        split_all(b"[" + b"{" * 300 + b"]", strict=strict)


# --- strict means standard JSON ------------------------------------------------------------------

NON_STANDARD = [b"NaN", b"Infinity", b"-Infinity"]


@pytest.mark.parametrize("constant", NON_STANDARD)
def test_strict_refuses_nan_and_infinity(constant: bytes) -> None:
    flat = b'[{"a":1},{"b":' + constant + b'}]'
    nested = b'[{"a":{"b":[' + constant + b']}}]'  # through the exact scanner
    for body, count in ((flat, 2), (nested, 1)):
        for sizes in (None, [1], [7]):
            with pytest.raises(BadBody, match="not standard JSON"):
                split_all(body, sizes, strict=True)
        assert len(split_all(body)) == count  # without --strict, Python's json rules
    event = b'{"a":' + constant + b"}"
    with pytest.raises(BadBody, match=f"{constant.decode()} is not standard JSON"):
        decode_event(event, strict=True)
    assert isinstance(decode_event(event)["a"], float)


def test_strict_accepts_the_strings_and_numbers_that_look_alike() -> None:
    body = b'[{"a":"NaN","b":1e308,"c":-0.0,"d":"Infinity"}]'
    assert split_all(body, strict=True) == [body[1:-1]]


# --- a body that is not an array of objects is not "cut short" ----------------------------------

NOT_AN_ARRAY_OF_OBJECTS = [
    pytest.param(b'[{"a":1}]]', id="extra-bracket"),
    pytest.param(b'[{"a":1}]x', id="garbage-after-the-array"),
    pytest.param(b'[{"a":1}] {"b":2}', id="object-after-the-array"),
    pytest.param(b'[{"a":1} {"b":2}]', id="missing-comma"),
    pytest.param(b'[{"a":1}, 5]', id="number-element"),
    pytest.param(b'[{"a":1}, [{"b":2}]]', id="list-element"),
    pytest.param(b'[{"a":1}}]', id="extra-brace"),
    pytest.param(b'[{"a":1}, "x"', id="string-element-then-cut"),
]


@pytest.mark.parametrize("body", NOT_AN_ARRAY_OF_OBJECTS)
@pytest.mark.parametrize("strict", [False, True])
def test_not_an_array_of_objects_is_said_so(body: bytes, strict: bool) -> None:
    for sizes in (None, [1], [3, 7]):
        with pytest.raises(BadBody) as caught:
            split_all(body, sizes, strict=strict)
        message = str(caught.value)
        assert "cut short" not in message
        assert message.startswith(("response body is not a JSON array of objects",
                                   "response body holds an invalid event"))


@pytest.mark.parametrize("body, count", [
    (b"[", 0), (b"[ ", 0), (b'[{"a":"b"', 0), (b'[{"a":1}', 1), (b'[{"a":1},', 1),
    (b'[{"a":1},{"b":2}', 2), (b'[{"a":[1,{"b":2}]}, {"c":', 1),
])
def test_a_body_cut_short_says_how_many_events_came(body: bytes, count: int) -> None:
    for sizes in (None, [1], [3, 7]):
        with pytest.raises(BadBody) as caught:
            split_all(body, sizes)
        noun = "event" if count == 1 else "events"
        assert str(caught.value) == f"response body cut short after {count} {noun}"
