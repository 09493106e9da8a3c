"""CSV rows built a column at a time, and orjson's parse, against the slow and sure way.

``_rows_text`` must write exactly what ``csv.writer`` writes for the rows the CSV format has
always made (:func:`reference_rows`); ``parse_array`` must give ``json``'s verdict and, where it
says the value is not exact (orjson parsed it), ``json``'s value wherever there is no float. Every
test that can runs twice: with orjson (when installed) and with the standard library only.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterator, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubasync.errors import BadBody
from hubasync.events import parsing
from hubasync.events.formats import _cell, _compact, _rows_text, _without_nul, format_writer
from hubasync.events.parsing import holds_float, parse_array
from hubasync.events.splitter import Batch
from hubasync.files.output import open_output

try:
    import orjson
except ImportError:  # the fallback alone is tested
    orjson = None


@pytest.fixture(params=["orjson", "json"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Both parsers in turn: orjson first (skipped when not installed), then json alone."""
    if request.param == "orjson" and orjson is None:
        pytest.skip("orjson is not installed")
    monkeypatch.setattr(parsing, "FAST", request.param == "orjson")
    yield request.param == "orjson"


def reference_rows(records: list[dict[str, Any]], columns: list[str],
                   extra: Optional[str]) -> str:
    """The rows as the CSV format wrote them before: a cell at a time, each NUL written as the
    text \\u0000, through csv.writer."""
    names = frozenset(columns)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    for record in records:
        row = [_cell(record.get(name, "")) for name in columns]
        if extra is not None:
            rest = {k: v for k, v in record.items() if k not in names}
            row.append(_compact(rest) if rest else "")
        writer.writerow([_without_nul(cell) for cell in row])
    return text.getvalue()


_TEXT = st.text(alphabet=st.sampled_from(list('ab ,"\r\n\t\\\0é中\ud800😀')), max_size=6)
_SCALAR = st.one_of(_TEXT, st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.floats(allow_nan=True), st.booleans(), st.none())
_VALUE = st.recursive(_SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=2)), max_leaves=5)
_KEYS = st.sampled_from(["a", "b", "c", "k,1", 'q"', ""])
_RECORD = st.dictionaries(_KEYS, st.one_of(_TEXT, _TEXT, st.lists(_TEXT, max_size=3), _VALUE),
                          max_size=4)


@settings(max_examples=400)
@given(st.lists(_RECORD, min_size=1, max_size=8),
       st.lists(_KEYS, min_size=1, max_size=4, unique=True), st.booleans())
def test_rows_are_what_csv_writer_writes(records: list[dict[str, Any]], columns: list[str],
                                         with_extra: bool) -> None:
    extra = "extra" if with_extra else None
    rows = _rows_text(records, columns, extra, True)
    assert rows is not None
    assert _without_nul(rows) == reference_rows(records, columns, extra)


def test_a_row_of_one_empty_field_is_quoted_as_csv_writer_does() -> None:
    records: list[dict[str, Any]] = [{"a": ""}, {}, {"a": "x"}]
    assert _rows_text(records, ["a"], None, True) == '""\r\n""\r\nx\r\n'
    assert _rows_text(records, ["a"], None, True) == reference_rows(records, ["a"], None)


def test_orjson_values_with_floats_are_not_trusted() -> None:
    assert _rows_text([{"a": 1.5}], ["a"], None, False) is None
    assert _rows_text([{"a": [1, [2.0]]}], ["a"], None, False) is None
    assert _rows_text([{"a": "x", "b": {"c": 1e300}}], ["a"], "extra", False) is None
    assert _rows_text([{"a": ["x", "y"], "b": 7}], ["a"], "extra", False) == (
        '"[""x"",""y""]","{""b"":7}"\r\n')


def _json_text(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(max_examples=400)
@given(st.lists(st.dictionaries(_TEXT, _VALUE, max_size=3), max_size=4), st.data())
def test_parse_array_is_json_wherever_it_claims_or_holds_no_float(
        events: list[dict[str, Any]], data: st.DataObject) -> None:
    text = _json_text(events)
    if data.draw(st.booleans()):  # damage it: the verdicts must still agree
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(st.sampled_from([b"", b",", b"}", b'"', b"\\", b"\n",
                                                      b"NaN", b"1e999", b"\xff"])) + text[at + 1:]
    for strict in (False, True):
        try:
            expected: Any = (json.loads(text, parse_constant=parsing.refuse_constant)
                             if strict else json.loads(text))
        except (ValueError, RecursionError) as error:
            with pytest.raises(type(error)):
                parse_array(text, strict=strict)
            continue
        value, exact = parse_array(text, strict=strict)
        if exact or not holds_float(value):
            assert repr(value) == repr(expected)


def test_holds_float_looks_everywhere() -> None:
    assert not holds_float({"a": ["x", 1, True, None, {"b": "c"}]})
    assert holds_float({"a": ["x", {"b": [0.5]}]})
    assert holds_float(2.0)


@pytest.mark.skipif(orjson is None, reason="orjson is not installed")
def test_orjson_big_integers_are_parsed_again_by_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "FAST", True)
    value, exact = parse_array(b'[{"n":123456789012345678901234567890}]')
    assert not exact and holds_float(value)  # orjson made it a float: the caller must not trust it
    assert parse_array(b"[NaN]") == ([pytest.approx(float("nan"), nan_ok=True)], True)
    with pytest.raises(ValueError, match="NaN is not standard JSON"):
        parse_array(b"[NaN]", strict=True)


def write_csv(batches: list[list[bytes]], projection: tuple[str, ...] = ()) -> bytes:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream), projection=projection)
    for events in batches:
        writer.write(Batch.of(events))
    writer.commit()
    writer.close(complete=True)
    return stream.getvalue()


ODD = [
    b'{"n":123456789012345678901234567890,"f":1.5,"s":"a,b","l":["x","\\"y"]}',
    b'{"n":-0,"f":1E400,"s":"\\u0000","l":[1,2.5],"x":{"deep":[1e-7]}}',
    b'{"s":"\\ud800 lone","new":NaN,"n":18446744073709551616}',
    b'{"s":"line\\r\\nbreak","l":[],"b":true,"z":null}',
]


@pytest.mark.parametrize("projection", [(), ("n", "f", "x", "missing")])
def test_csv_is_the_same_bytes_with_either_parser(fast: bool, projection: tuple[str, ...],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    batches = [[ODD[0]], ODD[1:3], [ODD[3]]]  # the first one orjson parses, with a big integer
    written = write_csv(batches, projection)
    monkeypatch.setattr(parsing, "FAST", False)
    assert written == write_csv(batches, projection)
    assert b"\0" not in written and b"123456789012345678901234567890" in written


def test_an_invalid_batch_reads_as_it_always_did(fast: bool) -> None:
    with pytest.raises(BadBody, match=r"invalid event: Invalid control character at: line 1 "
                                      r"column 8 \(char 7\)"):
        write_csv([[b'{"a":"x\ny"}']])
    with pytest.raises(BadBody, match="invalid event: Expecting value"):
        write_csv([[b'{"a":1}', b'{"b":tru}']])


@pytest.mark.skipif(orjson is None, reason="orjson is not installed")
def test_orjson_parses_a_long_array_a_slice_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "FAST", True)
    monkeypatch.setattr(parsing, "SLICE", 64)
    events = [{"i": i, "s": "}, {" * (i % 3), "l": ["]", "{"]} for i in range(200)]
    text = json.dumps(events, separators=(",", ":")).encode()
    assert parse_array(text) == (events, False)  # cut in many slices, each one parses
    for event in events:  # cuts inside strings: such a slice fails, json parses it all
        event["s"] = "},{"
    text = json.dumps(events, separators=(",", ":")).encode()
    assert parse_array(text) == (events, True)
    # a cut inside a nested list
    nested = b'[{"a":[' + b'{"b":1},' * 30 + b'{"c":2}]}' + b',{"d":"x"}' * 40 + b"]"
    assert parse_array(nested) == (json.loads(nested), True)
    monkeypatch.setattr(parsing, "ORJSON_MAX", 100)
    big = json.dumps([{"a": "x" * 200}]).encode()  # one event too large to cut: json's
    assert parse_array(big) == (json.loads(big), True)


def test_holds_float_is_not_bounded_by_the_recursion_limit() -> None:
    value: Any = "x"
    for _ in range(5000):
        value = [value]
    assert not holds_float(value)
    assert holds_float([value, [[0.5]]])


def test_a_run_the_fast_check_let_through_fails_as_it_always_did(fast: bool) -> None:
    run = Batch()
    run.add(b'{"a":1},2,{"b":1}', 2)  # two objects for the check, valid JSON of three values
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    with pytest.raises(BadBody, match="expected an object after ','"):
        writer.write(run)
