"""Pure parts of the simulator: parameters, filter language, times, tokens, events, data files."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubasync.sim.dataset import DataError, Dataset, load_jsonl
from hubasync.sim.generator import generate
from hubasync.sim.query import InvalidInputs, compile_filter, parse_query
from hubasync.sim.times import parse_time_param
from hubasync.sim.tokens import Position, decode_token, encode_token

NOW = 1_700_000_000.0


def test_time_forms():
    assert parse_time_param("2020-10-01", NOW) == 1601510400
    assert parse_time_param("2020-10-01T12:00:00Z", NOW) == 1601553600
    assert parse_time_param("2020-10-01 12:00", NOW) == 1601553600
    assert parse_time_param("2020-10-01T14:00:00+02:00", NOW) == 1601553600
    assert parse_time_param("1601553600", NOW) == 1601553600
    assert parse_time_param("1601553600.5", NOW) == 1601553600.5
    assert parse_time_param("0", NOW) == NOW
    assert parse_time_param("-60", NOW) == NOW - 60
    for bad in ("", "foo", "2020-02-30", "2020-10-01T25:00", "inf", "1e300"):
        assert parse_time_param(bad, NOW) is None, bad


def test_invalid_inputs_collects_every_error():
    with pytest.raises(InvalidInputs) as info:
        parse_query([("start", "foo"), ("startt", "1"), ("sort", "size"), ("reverse", "maybe")],
                    now=NOW)
    assert [e["key"] for e in info.value.errors] == ["startt", "start", "sort", "reverse"]
    assert info.value.body()["description"] == "4 invalid input(s)"


def test_query_fields():
    q = parse_query([("start", "2020-10-01"), ("end", "-10"), ("projection", "a"),
                     ("projection", "b"), ("sort", "_id"), ("reverse", ""), ("limit", "5"),
                     ("token", "x")], now=NOW)
    assert (q.start, q.end, q.projection, q.sort, q.reverse, q.limit, q.token) == (
        1601510400, NOW - 10, ("a", "b"), "_id", True, 5, "x")
    assert parse_query([("reverse", "false")], now=NOW).reverse is False
    assert parse_query([], now=NOW, notification=True).sort == "_id"
    with pytest.raises(InvalidInputs):
        parse_query([("sort", "_id")], now=NOW, notification=True)


@pytest.mark.parametrize(("expr", "event", "expected"), [
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": ["x", "b"]}, True),
    ("a=b", {"a": "c"}, False),
    ("a!=b", {}, True),
    ("a!=b", {"a": ["b"]}, False),
    ('"key with spaces"="value with spaces"', {"key with spaces": "value with spaces"}, True),
    ("a=b AND c=d", {"a": "b", "c": "d"}, True),
    ("a=b and c=d", {"a": "b", "c": "x"}, False),
    ("a=b OR c=d", {"a": "x", "c": "d"}, True),
    ("NOT a=b", {"a": "b"}, False),
    ("(a=b OR a=c) AND NOT d=*", {"a": "c"}, True),
    ("a=*", {"b": "1"}, False),
    (r'a="say \"hi\""', {"a": 'say "hi"'}, True),
    ("port=80", {"port": "80"}, True),
])
def test_filter_language(expr, event, expected):
    flt = compile_filter(expr)
    assert flt(event) is expected
    if expected:
        blob = json.dumps(event, ensure_ascii=False).encode()
        assert all(n in blob for n in flt.needles)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**36), st.booleans(),
       st.sampled_from(["_id", "time"]))
def test_tokens_round_trip_and_are_url_safe(event_id, when, reverse, sort):
    pos = Position(sort, reverse, event_id, when)
    text = encode_token(pos)
    assert decode_token(text) == pos
    assert text.replace("-", "").replace("_", "").isalnum()


@given(st.text())
def test_foreign_tokens_do_not_decode(text):
    if not text.startswith("aHViMT"):
        assert decode_token(text) is None


def test_generation_is_deterministic_and_realistic():
    _, one, times = generate(3, 500, 1_700_000_000)
    _, two, _ = generate(3, 500, 1_700_000_000)
    _, other, _ = generate(4, 500, 1_700_000_000)
    assert one == two and one != other
    events = [json.loads(b) for b in one]
    keys = set().union(*events)
    assert {"observation time", "source time", "feed", "type", "category", "ip", "asn",
            "as name", "domain name", "port", "uuid", "description"} <= keys
    assert {e["category"] for e in events} == {"suspected compromise", "known vulnerabilities",
                                               "public exposure", "potential threats"}
    assert any(isinstance(e.get("domain name"), list) for e in events)
    assert any(not e["as name"].isascii() for e in events)
    assert len({e["uuid"] for e in events}) == 500
    assert all(1_700_000_000 - 31 * 86400 < t <= 1_700_000_000 for t in times)
    assert times != sorted(times)  # arrival order is not time order
    assert all(set(e) <= set(json.loads(json.dumps(e))) for e in events)


def test_event_size_pads_events():
    _, blobs, _ = generate(1, 200, 1_700_000_000, event_size=1300)
    sizes = [len(b) for b in blobs]
    assert all(1290 <= s <= 1310 for s in sizes)
    assert all(json.loads(b)["description"] for b in blobs)


def test_data_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"observation time": "2024-01-02 03:04:05Z", "feed": "x", "ip": ["1.2.3.4"]}\n\n'
        '{"feed": "no time", "note": "äö"}\n', encoding="utf-8")
    blobs, times = load_jsonl(str(path))
    assert times == [1704164645, 0]
    assert json.loads(blobs[1]) == {"feed": "no time", "note": "äö"}
    data = Dataset(seed=1, events=0, data=str(path))
    assert len(data.share("demo")) == 2 and len(data.share("notify/0")) == 1
    (tmp_path / "bad.jsonl").write_text("[1]\n")
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_jsonl(str(tmp_path / "bad.jsonl"))


def test_a_nonce_makes_a_new_text_for_the_same_position():
    pos = Position("_id", False, 42, 0)
    texts = {encode_token(pos, nonce) for nonce in (1, 2, 3)} | {encode_token(pos)}
    assert len(texts) == 4
    assert {decode_token(text) for text in texts} == {pos}
