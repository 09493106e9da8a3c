"""Formats of hubasync.writers: parsed back, they hold exactly the committed events."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubasync.errors import UsageError
from hubasync.events.formats import FORMATS, FormatWriter, format_writer
from hubasync.events.splitter import Batch
from hubasync.files.output import Output, open_output

SRC = str(Path(__file__).resolve().parents[1] / "src")

Event = dict[str, Any]


def raw(event: Event) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def sample(number: int, **more: Any) -> Event:
    return {
        "feed": f"feed {number % 3}",
        "ip": [f"192.0.2.{number % 250}"],
        "observation time": "2020-10-01 00:00:00Z",
        **more,
    }


def batch(first: int, count: int) -> list[Event]:
    return [sample(number) for number in range(first, first + count)]


def cell(value: Any) -> str:
    """A value as the CSV writer writes it; a NUL in a string becomes the text \\u0000."""
    if isinstance(value, str):
        return value.replace("\0", "\\u0000")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse(fmt: str, data: bytes) -> list[Event]:
    """Read an output back as events (CSV rows come back as cell strings)."""
    if fmt == "json":
        result: list[Event] = json.loads(data)
        return result
    text = data.decode("utf-8")
    if fmt == "jsonl":
        assert text == "" or text.endswith("\n")
        return [json.loads(line) for line in text.split("\n")[:-1]]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    assert data.count(b"\r\n") >= len(rows)
    events = []
    for row in body:
        assert len(row) == len(header)
        event: Event = {}
        for name, value in zip(header, row):
            if name.endswith("extra") and name.strip("_") == "extra" and name not in event:
                if value:
                    event.update((key, cell(item)) for key, item in json.loads(value).items())
            elif value != "":
                event[name] = value
        events.append(event)
    return events


def as_parsed(fmt: str, events: list[Event]) -> list[Event]:
    """What ``parse`` gives back for ``events`` written in ``fmt``."""
    if fmt != "csv":
        return events
    return [{key: cell(value) for key, value in event.items() if value != ""} for event in events]


def write_page(writer: FormatWriter, events: list[Event], batch_size: int = 7) -> None:
    for start in range(0, len(events), batch_size):
        writer.write(Batch.of([raw(event) for event in events[start : start + batch_size]]))


# -- each format, parsed back -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_pages_parse_back_to_the_events(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"out.{fmt}"
    writer = format_writer(fmt, open_output(str(path)))
    expected: list[Event] = []
    for number in range(4):
        events = batch(number * 30, 30)
        write_page(writer, events)
        offset = writer.commit()
        expected += events
        assert offset == (tmp_path / f"out.{fmt}.part").stat().st_size
    assert writer.started
    writer.close(complete=True)
    assert parse(fmt, path.read_bytes()) == as_parsed(fmt, expected)


def test_json_array_layout() -> None:
    stream = io.BytesIO()
    writer = format_writer("json", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"a":1}', b'{"b":2}']))
    writer.commit()
    writer.write(Batch.of([]))
    writer.write(Batch.of([b'{"c":3}']))
    writer.commit()
    writer.close(complete=True)
    assert stream.getvalue() == b'[\n{"a":1},\n{"b":2},\n{"c":3}\n]\n'


@pytest.mark.parametrize(("fmt", "empty"), [("json", b"[]\n"), ("jsonl", b""), ("csv", b"")])
def test_no_events_at_all(tmp_path: Path, fmt: str, empty: bytes) -> None:
    path = tmp_path / "out"
    writer = format_writer(fmt, open_output(str(path)))
    writer.commit()
    writer.close(complete=True)
    assert path.read_bytes() == empty


def test_json_passes_events_through_byte_for_byte() -> None:
    events = [b'{"a" : 1.50, "z":"\\u00e9"}', b'{\n  "pretty": [1,\n 2]\n}']
    stream = io.BytesIO()
    writer = format_writer("json", open_output(None, stdout=stream))
    writer.write(Batch.of(events))
    writer.close(complete=True)
    assert stream.getvalue() == b"[\n" + b",\n".join(events) + b"\n]\n"


def test_json_keeps_a_hub_batch_as_sent() -> None:
    from hubasync.events.splitter import EventSplitter

    body = b'[{"a":"},{"},{"b":["c","d"]},{"e":"f"}]'
    batch = EventSplitter().feed_batch(body)
    assert batch.count == 3
    stream = io.BytesIO()
    writer = format_writer("json", open_output(None, stdout=stream))
    writer.write(batch)
    writer.close(complete=True)
    assert json.loads(stream.getvalue()) == json.loads(body)
    assert stream.getvalue().replace(b",\n", b",") == b"[\n" + body[1:-1] + b"\n]\n"


def test_jsonl_puts_pretty_events_on_one_line() -> None:
    events = [
        b'{"a" : 1.50}',
        b'{\n  "multi": ["line",\r\n "event"],\n  "text": "caf\xc3\xa9"\n}',
        b'{"b":"\\n stays escaped"}',
    ]
    stream = io.BytesIO()
    writer = format_writer("jsonl", open_output(None, stdout=stream))
    writer.write(Batch.of(events))
    writer.write(Batch.of([b'{"c":1,\r"d":2}']))
    writer.close(complete=True)
    lines = stream.getvalue().split(b"\n")
    assert lines == [
        b'{"a" : 1.50}',
        '{"multi":["line","event"],"text":"café"}'.encode(),
        b'{"b":"\\n stays escaped"}',
        b'{"c":1,"d":2}',
        b"",
    ]


# -- csv ----------------------------------------------------------------------------------------


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def test_csv_columns_come_from_the_first_batch_and_the_rest_goes_to_extra() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"feed":"a","ip":["1.2.3.4","5.6.7.8"]}',
                               b'{"port":"80","feed":"b"}']))
    writer.write(Batch.of([b'{"feed":"c","asn":65000,"late":null,"ok":true}']))
    writer.commit()
    writer.write(Batch.of([b'{"ip":[],"new key":"x","nested":{"k":"v"}}']))
    writer.close(complete=True)
    data = stream.getvalue()
    assert data.endswith(b"\r\n")
    assert csv_rows(data) == [
        ["feed", "ip", "port", "extra"],
        ["a", '["1.2.3.4","5.6.7.8"]', "", ""],
        ["b", "", "80", ""],
        ["c", "", "", '{"asn":65000,"late":null,"ok":true}'],
        ["", "[]", "", '{"new key":"x","nested":{"k":"v"}}'],
    ]


def test_csv_extra_column_is_renamed_when_an_event_has_that_key() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"extra":"e","_extra":"f"}', b'{"other":"o","x":"y"}']))
    writer.close(complete=True)
    assert csv_rows(stream.getvalue()) == [
        ["extra", "_extra", "other", "x", "__extra"],
        ["e", "f", "", "", ""],
        ["", "", "o", "y", ""],
    ]


def test_csv_with_projection() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream), projection=("ip", "feed"))
    writer.write(Batch.of([b'{"feed":"a","ip":["1"],"unasked":"x"}',
                               b'{"feed":"b, \\"q\\"\\nz"}']))
    writer.close(complete=True)
    assert csv_rows(stream.getvalue()) == [["ip", "feed"], ['["1"]', "a"], ["", 'b, "q"\nz']]


def test_csv_without_events_is_empty_or_just_the_projection_header() -> None:
    stream = io.BytesIO()
    format_writer("csv", open_output(None, stdout=stream)).close(complete=True)
    assert stream.getvalue() == b""
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream), projection=("feed", "ip"))
    writer.close(complete=True)
    assert stream.getvalue() == b"feed,ip\r\n"


def test_csv_rollback_of_the_first_page_forgets_its_columns() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"gone":"1"}']))
    assert writer.resume_info()["columns"] is None
    writer.rollback()
    writer.write(Batch.of([b'{"feed":"a"}']))
    writer.commit()
    assert writer.resume_info() == {
        "format": "csv",
        "started": True,
        "columns": ["feed"],
        "extra": "extra",
    }
    writer.close(complete=True)
    assert csv_rows(stream.getvalue()) == [["feed", "extra"], ["a", ""]]


def test_csv_lone_surrogate_does_not_break_the_output() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"k":"\\ud800x"}']))
    writer.close(complete=True)
    assert csv_rows(stream.getvalue()) == [["k", "extra"], ["\\ud800x", ""]]


def test_csv_never_holds_a_raw_nul_byte() -> None:
    # In a value, a key (so the header and the extra column), a list cell, and with a real
    # backslash before "u0000" that is no NUL at all and must stay as it is.
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream))
    writer.write(Batch.of([b'{"k":"a\\u0000b","n\\u0000":"x","l":["\\u0000"]}',
                       b'{"k":"\\\\u0000"}']))
    writer.write(Batch.of([b'{"k":"\\u0000","late\\u0000":"y"}']))
    writer.close(complete=True)
    data = stream.getvalue()
    assert b"\0" not in data
    assert csv_rows(data) == [
        ["k", "n\\u0000", "l", "extra"],
        ["a\\u0000b", "x", '["\\u0000"]', ""],
        ["\\u0000", "", "", ""],  # the text itself, as it came
        ["\\u0000", "", "", '{"late\\u0000":"y"}'],
    ]


def test_csv_projection_header_without_events_has_no_nul() -> None:
    stream = io.BytesIO()
    writer = format_writer("csv", open_output(None, stdout=stream), projection=("a\0b",))
    writer.close(complete=True)
    assert stream.getvalue() == b"a\\u0000b\r\n"


# -- rollback and abort -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_rollback_leaves_no_trace(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "out"
    writer = format_writer(fmt, open_output(str(path)))
    write_page(writer, batch(0, 5))
    writer.rollback()
    write_page(writer, batch(100, 3))
    writer.commit()
    write_page(writer, batch(200, 20000))  # several MiB: reaches the disk before the rollback
    writer.rollback()
    write_page(writer, batch(300, 2))
    writer.commit()
    assert writer.started
    writer.close(complete=True)
    assert parse(fmt, path.read_bytes()) == as_parsed(fmt, batch(100, 3) + batch(300, 2))


@pytest.mark.parametrize("fmt", FORMATS)
def test_abort_on_stdout_file_leaves_valid_output_of_committed_pages(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / "redirected"
    with open(path, "wb") as stream:
        writer = format_writer(fmt, open_output(None, stdout=stream))
        write_page(writer, batch(0, 10))
        writer.commit()
        write_page(writer, batch(10, 20000))
        writer.close(complete=False)
        writer.close(complete=False)
    assert parse(fmt, path.read_bytes()) == as_parsed(fmt, batch(0, 10))


@pytest.mark.parametrize("fmt", FORMATS)
def test_abort_on_a_pipe_leaves_valid_output(fmt: str) -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as stream:
        writer = format_writer(fmt, open_output(None, stdout=stream))
        write_page(writer, batch(0, 4))
        writer.commit()
        write_page(writer, batch(4, 4))
        writer.close(complete=False)
    with os.fdopen(read_end, "rb") as reader:
        assert parse(fmt, reader.read()) == as_parsed(fmt, batch(0, 4))


def test_json_abort_without_events_is_an_empty_array() -> None:
    stream = io.BytesIO()
    writer = format_writer("json", open_output(None, stdout=stream))
    writer.write(Batch.of([b"{}"]))
    writer.close(complete=False)
    assert stream.getvalue() == b"[]\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_abort_keeps_a_resumable_part_and_never_touches_path(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "out"
    part = tmp_path / "out.part"
    writer = format_writer(fmt, open_output(str(path)))
    write_page(writer, batch(0, 6))
    offset = writer.commit()
    committed = part.read_bytes()
    assert len(committed) == offset
    info = writer.resume_info()
    write_page(writer, batch(6, 6))
    writer.close(complete=False)
    assert not path.exists()
    assert part.read_bytes().startswith(committed)
    assert parse(fmt, part.read_bytes()) == as_parsed(fmt, batch(0, 6))

    writer = format_writer(fmt, open_output(str(path), resume_offset=offset), resume=info)
    write_page(writer, batch(6, 6))
    writer.commit()
    writer.close(complete=True)
    assert parse(fmt, path.read_bytes()) == as_parsed(fmt, batch(0, 12))
    assert not part.exists()


# -- resume after a kill -9 ---------------------------------------------------------------------


KILLED_WRITER = """
import json, os, signal, sys
sys.path.insert(0, {src!r})
from hubasync.files.output import open_output
from hubasync.events.formats import format_writer
from hubasync.files.state import RunState, save_state
from hubasync.events.splitter import Batch

fmt, path, state_path = sys.argv[1:4]
out = open_output(path, append=fmt == "jsonl")
writer = format_writer(fmt, out)
for number in range(3):
    events = [{{"n": number * 10 + k, "feed": "f", "k%d" % number: [str(k)]}} for k in range(10)]
    writer.write(Batch.of([json.dumps(e).encode() for e in events]))
    offset = writer.commit()
    save_state(state_path, RunState(
        fingerprint="fp", token="t%d" % (number + 1), output_offset=offset,
        events=(number + 1) * 10, pages=number + 1, writer=writer.resume_info()))
writer.write(Batch.of([b'{{"n": "%s"}}' % (b"uncommitted" * 10)] * 50000))
os.kill(os.getpid(), signal.SIGKILL)
"""


def numbered(first: int, count: int) -> list[Event]:
    return [
        {"n": number, "feed": "f", f"k{number // 10}": [str(number % 10)]}
        for number in range(first, first + count)
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_after_kill_continues_exactly_once(tmp_path: Path, fmt: str) -> None:
    from hubasync.files.state import load_state

    path = tmp_path / f"out.{fmt}"
    state_path = tmp_path / "state.json"
    script = KILLED_WRITER.format(src=SRC)
    done = subprocess.run(
        [sys.executable, "-c", script, fmt, str(path), str(state_path)], check=False
    )
    assert done.returncode == -signal.SIGKILL
    state = load_state(str(state_path))
    assert state is not None and state.pages == 3 and state.events == 30
    written = path if fmt == "jsonl" else tmp_path / f"out.{fmt}.part"
    assert written.stat().st_size > state.output_offset, "the kill left a torn page"
    with open(written, "ab") as torn:
        torn.write(b'garbage, {"half an event')

    output = open_output(str(path), append=fmt == "jsonl", resume_offset=state.output_offset)
    writer = format_writer(fmt, output, resume=state.writer)
    assert writer.started
    write_page(writer, numbered(30, 10))
    writer.commit()
    writer.close(complete=True)

    expected = numbered(0, 40)
    if fmt == "csv":
        rows = csv_rows(path.read_bytes())
        assert rows[0] == ["n", "feed", "k0", "extra"]
        assert [int(row[0]) for row in rows[1:]] == list(range(40))
        assert [row[3] for row in rows[1:12]] == [""] * 10 + ['{"k1":["0"]}']
    assert parse(fmt, path.read_bytes()) == as_parsed(fmt, expected)


# -- format_writer checks ----------------------------------------------------------------------


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        format_writer("xml", open_output(None, stdout=io.BytesIO()))


def test_resume_with_another_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o.part").write_bytes(b"[\n{}")
    output = open_output(str(tmp_path / "o"), resume_offset=4)
    with pytest.raises(UsageError, match="cannot continue a json output as csv"):
        format_writer("csv", output, resume={"format": "json", "events": 1})


def test_corrupt_resume_info_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o.part").write_bytes(b"a,b\r\n1,2\r\n")
    output = open_output(str(tmp_path / "o"), resume_offset=10)
    with pytest.raises(UsageError, match="corrupt"):
        format_writer("csv", output, resume={"format": "csv", "started": True, "columns": None})
    with pytest.raises(UsageError, match="corrupt"):
        format_writer("csv", output, resume={"format": "csv", "events": "1"})


def test_resume_info_is_ignored_on_a_pipe() -> None:
    stream = io.BytesIO()
    output = open_output(None, stdout=stream, resume_offset=50)
    writer = format_writer("json", output, resume={"format": "json", "events": 9})
    assert not writer.started
    writer.close(complete=True)
    assert stream.getvalue() == b"[]\n"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_new_document_starts_where_the_output_stands(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "o"
    path.write_bytes(b"before\n")  # as `>> file` hands it over: the run writes after it
    writer = format_writer(fmt, open_output(str(path), append=True), projection=("a",))
    writer.write(Batch.of([b'{"a":"x"}']))
    writer.close(complete=True)
    after = path.read_bytes()[len(b"before\n"):]
    assert after == (b'[\n{"a":"x"}\n]\n' if fmt == "json" else b'a\r\nx\r\n')


def test_jsonl_appends_to_a_non_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(b'{"old":1}\n')
    writer = format_writer("jsonl", open_output(str(path), append=True))
    writer.write(Batch.of([b'{"new":2}']))
    writer.close(complete=True)
    assert path.read_bytes() == b'{"old":1}\n{"new":2}\n'


# -- property: random page sequences ------------------------------------------------------------

keys = st.sampled_from(["feed", "ip", "type", "extra", "a b", "é", "port"])
values = st.one_of(
    st.text(max_size=8),
    st.lists(st.text(max_size=4), max_size=3),
    st.integers(-5, 5),
    st.none(),
)
events_strategy = st.dictionaries(keys, values, max_size=5)
step = st.one_of(
    st.tuples(st.just("write"), st.lists(events_strategy, max_size=6)),
    st.tuples(st.just("commit"), st.none()),
    st.tuples(st.just("rollback"), st.none()),
    st.tuples(st.just("crash"), st.none()),
)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", ["file", "stdout-file", "stream"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(step, max_size=12),
    end=st.sampled_from(["finish", "abort"]),
    pretty=st.booleans(),
)
def test_random_page_sequences_keep_exactly_the_committed_events(
    tmp_path: Path,
    fmt: str,
    where: str,
    steps: list[tuple[str, Any]],
    end: str,
    pretty: bool,
) -> None:
    path = tmp_path / f"{fmt}-{where}"
    for leftover in (path, Path(f"{path}.part")):
        if leftover.exists():
            leftover.unlink()
    stream = io.BytesIO()
    handle = open(path, "wb") if where == "stdout-file" else None  # noqa: SIM115

    def reopen(offset: int | None) -> Output:
        if where == "file":
            return open_output(str(path), resume_offset=offset)
        return open_output(None, stdout=handle or stream, resume_offset=offset)

    indent = 2 if pretty else None
    output = reopen(None)
    writer = format_writer(fmt, output)
    committed: list[Event] = []
    pending: list[Event] = []
    first_batch: list[Event] | None = None
    pending_first: list[Event] | None = None
    try:
        for action, payload in steps:
            if action == "write":
                writer.write(Batch.of([json.dumps(e, indent=indent).encode() for e in payload]))
                pending += payload
                if first_batch is None and pending_first is None and payload:
                    pending_first = payload
            elif action == "commit":
                writer.commit()
                committed += pending
                pending = []
                first_batch = first_batch or pending_first
                pending_first = None
            elif action == "rollback":
                writer.rollback()
                pending, pending_first = [], None
            elif where != "stream":  # a crash: resume from the last commit, torn tail and all
                offset, info = writer.offset, writer.resume_info()
                writer.output.close(complete=False, trailer=b'\n{"torn": ')
                output = reopen(offset)
                writer = format_writer(fmt, output, resume=info)
                pending, pending_first = [], None
        if end == "finish":
            writer.close(complete=True)
            if pending:
                committed += pending
                first_batch = first_batch or pending_first
        else:
            writer.close(complete=False)
    finally:
        if handle is not None:
            handle.close()

    if where == "stream":
        data = stream.getvalue()
    elif where == "file" and end == "abort":
        part = Path(f"{path}.part")
        data = part.read_bytes() if part.exists() else b""
        assert not path.exists()
        if fmt == "json" and not part.exists():
            data = b"[]"
    else:
        data = path.read_bytes()
    assert writer.started == bool(committed)

    if fmt != "csv":
        assert parse(fmt, data) == committed
        return
    rows = csv_rows(data)
    if not committed:
        assert rows == []
        return
    columns = list(dict.fromkeys(key for event in first_batch or [] for key in event))
    extra = "extra"
    while extra in columns:
        extra = "_" + extra
    assert rows[0] == [cell(name) for name in columns + [extra]]
    expected_rows = []
    for event in committed:
        row = [cell(event[name]) if name in event else "" for name in columns]
        rest = {key: value for key, value in event.items() if key not in columns}
        row.append(json.dumps(rest, ensure_ascii=False, separators=(",", ":")) if rest else "")
        expected_rows.append(row)
    assert rows[1:] == expected_rows
