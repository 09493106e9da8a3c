"""Output formats: turn raw event bytes into a JSON array, JSON lines or CSV, page by page.

A :class:`FormatWriter` writes events into an :class:`~hubasync.output.Output` and follows its page
transactions: ``commit`` makes the page part of the output, ``rollback`` forgets it,
including any format state the page changed (the opening bracket, the CSV header). Nothing a
format needs at the very end (the closing bracket) is ever part of a committed page, so the
committed offset is always a point where a later run can continue the same output.

Formats:

``json``
    One array: ``[``, newline, the events, then ``\\n]\\n``; no events at all give ``[]\\n``.
    The hub's bytes pass through as they came, its own separators between the events of a
    batch and ``,\\n`` between batches: nothing is decoded and encoded again. Closed early
    (``close(complete=False)``), the array is closed too, so a stopped run leaves valid JSON
    holding the committed pages.
``jsonl``
    One event per line, each ending in ``\\n``. Events pass through byte for byte unless they hold
    a raw line break (pretty-printed JSON); those lose the whitespace between their tokens.
``csv``
    The ``csv`` module's default dialect (``\\r\\n`` line ends), UTF-8. A header row, then one row
    per event. The columns are fixed once and never change, so a header always describes every
    row:

    - with a projection, the projection's keys in its order; other keys are left out;
    - otherwise, the keys of the *first batch*: the first batch written with events that
      is not rolled back, in first-seen order across that batch's events, then one last column
      named ``extra`` (``_extra``, ``__extra``... if an event key already has that name). ``extra``
      holds, for each event, a compact JSON object of its keys that are not columns, in the
      event's order, or nothing when there are none: a key first seen later is never lost;
    - a resumed output keeps the columns of the run it continues (``resume_info`` holds them).

    A string value is written as it is; any other value (a list, a number, ``null``...) as compact
    JSON text (``["a","b"]``); a missing key as an empty cell, like an empty string. A lone UTF-16
    surrogate (``"\\ud800"`` in the event) is written as the text ``\\ud800``, and a NUL
    character (``"\\u0000"``), in a value or a key, as the text ``\\u0000``: a CSV never holds a
    raw NUL byte, which many CSV readers cannot take. The header belongs
    to the page of the batch that fixed the columns: a rollback of that page forgets both. A run
    without events writes only the header with a projection, and an empty output without one
    (there are no columns to name).

A run continues an output left by an earlier one when given the earlier writer's ``resume_info()``
and an output opened at the committed offset the earlier ``commit`` returned.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import json.encoder
from typing import Any, Callable

from hubasync.errors import BadBody, UsageError
from hubasync.events.parsing import holds_float, parse_array
from hubasync.events.splitter import Batch
from hubasync.files.output import Output

FORMATS = ("json", "jsonl", "csv")

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_quote: Callable[[str], str] = json.encoder.encode_basestring


def _csv_bytes(text: str) -> bytes:
    """CSV text as UTF-8, a lone surrogate written as the text ``\\ud800``."""
    return text.encode("utf-8", "backslashreplace")


def _without_nul(text: str) -> str:
    """``text`` with each NUL written as the text ``\\u0000``."""
    return text.replace("\0", "\\u0000")


def _cell(value: object) -> str:
    if type(value) is str:
        return value
    if type(value) is list:
        try:
            return "[" + ",".join(map(_quote, value)) + "]"
        except TypeError:
            pass  # not only strings
    return _compact(value)


def _csv_rows(rows: list[list[str]]) -> str:
    """Rows as the ``csv`` module writes them (used for the header)."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    return text.getvalue()


def _csv_field(cell: str) -> str:
    """A cell as the ``csv`` module's default dialect writes it: quoted when it holds a comma,
    a quote or a line break, its quotes doubled."""
    if '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    if "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell + '"'
    return cell


def _csv_fields(cells: list[str]) -> list[str]:
    """A column's cells as CSV fields; one pass over the column when none needs quoting."""
    joined = "".join(cells)
    if '"' in joined or "," in joined or "\n" in joined or "\r" in joined:
        return list(map(_csv_field, cells))
    return cells


class _Untrusted(Exception):
    """A value parsed by orjson holds a float, which json might have parsed differently."""


def _trusted_cell(value: object) -> str:
    """:func:`_cell` of a value parsed by orjson; raises :class:`_Untrusted` at a float."""
    if type(value) is str:
        return value
    if type(value) is list:
        try:
            return "[" + ",".join(map(_quote, value)) + "]"
        except TypeError:
            pass  # not only strings
    if holds_float(value):
        raise _Untrusted
    return _compact(value)


def _extra_cell(record: dict[str, Any], names: frozenset[str], exact: bool) -> str:
    """The ``extra`` cell: the event's keys that are not columns, as compact JSON."""
    if names.issuperset(record):
        return ""
    rest = {key: value for key, value in record.items() if key not in names}
    if not exact and holds_float(rest):
        raise _Untrusted
    return _compact(rest)


def _rows_text(records: list[dict[str, Any]], columns: list[str], extra: str | None,
               exact: bool) -> str | None:
    """The CSV rows of ``records``, byte for byte what ``csv.writer`` writes for them.

    Built a column at a time: a missing key is an empty cell, values that are not strings are
    converted, and one pass over a column tells whether any of its cells needs quoting. None
    when orjson's values may differ from json's (see :mod:`hubasync.events.parsing`).
    """
    convert = _cell if exact else _trusted_cell
    table: list[list[str]] = []
    try:
        for name in columns:
            cells = list(map(dict.get, records, itertools.repeat(name), _BLANKS))
            if set(map(type, cells)) != _ONLY_STR:
                cells = list(map(convert, cells))
            table.append(cells)
        if extra is not None:
            names = frozenset(columns)
            if names.issuperset(itertools.chain.from_iterable(records)):
                table.append([""] * len(records))
            else:
                table.append([_extra_cell(record, names, exact) for record in records])
    except _Untrusted:
        return None
    fields = [_csv_fields(cells) for cells in table]
    if len(fields) == 1:  # the csv module quotes a row that is one empty field
        fields[0] = [field or '""' for field in fields[0]]
    return "\r\n".join(map(",".join, zip(*fields))) + "\r\n"


_ONLY_STR = {str}
_ONLY_DICT = {dict}
_BLANKS = itertools.repeat("")  # a missing key's cell, for map(dict.get, ...)


def _parse_events(batch: Batch, *, exact: bool) -> tuple[list[dict[str, Any]], bool]:
    """The events of ``batch``, parsed at once (see :func:`parse_array` for ``exact``).

    A batch that does not parse into as many objects as it has events (invalid JSON, or
    something between events that the fast check let through) is parsed again as it always
    was, its events one a line, so that it fails as it always did, with the same message.
    """
    try:
        records, exact = parse_array(b"[" + b",".join(batch.regions) + b"]", exact=exact)
    except (ValueError, RecursionError) as error:
        first: Exception = error
    else:
        if len(records) == batch.count and set(map(type, records)) == _ONLY_DICT:
            return records, exact
        first = BadBody("response body holds something else than objects")
    try:
        records = json.loads(b"[" + batch.lines(b",") + b"]")
    except (ValueError, RecursionError) as error:
        raise BadBody(f"response body holds an invalid event: {error}") from error
    if len(records) == batch.count and set(map(type, records)) == _ONLY_DICT:
        return records, True
    raise BadBody(f"response body holds an invalid event: {first}") from first


class FormatWriter:
    """Writes events in one format, page by page, into an :class:`Output`.

    ``started`` says whether the output holds committed events (those of the run it continues
    included): a format needs to know no more (the cursor counts them). ``offset`` is the
    committed offset the last ``commit`` returned (the place a later run continues from; a
    trailer written by ``close(complete=False)`` lies past it).
    """

    format = ""

    def __init__(self, output: Output, started: bool) -> None:
        self.output = output
        self.started = started
        self.offset = output.offset
        self._pending = False  # the current page holds events
        self._closed = False

    def write(self, batch: Batch) -> None:
        """Write a batch of events (the hub's bytes) as part of the current page."""
        raise NotImplementedError

    def commit(self) -> int:
        """Make the current page part of the output; return the committed offset."""
        self.offset = self.output.commit()
        self.started = self.started or self._pending
        self._pending = False
        self._committed()
        return self.offset

    def rollback(self) -> None:
        """Forget everything written since the last commit."""
        self.output.rollback()
        self._pending = False
        self._rolled_back()

    def close(self, *, complete: bool, end_document: bool = True) -> None:
        """End the output; closing twice does nothing.

        ``complete=True``: commit what is pending, close the format, finalize the output.
        ``complete=False``: stop early, dropping the uncommitted page and leaving the committed
        ones readable, followed by what makes them a valid document (the closing bracket of a
        JSON array) unless ``end_document`` is false; a later run continues at ``offset``.
        """
        if self._closed:
            return
        if complete:
            self._finish()
            return
        self._closed = True
        self._pending = False
        self._rolled_back()
        self.output.close(complete=False, trailer=self._ending() if end_document else b"")

    def _finish(self) -> None:
        if self._pending:
            self.commit()
        self._closed = True
        self.output.write(self._ending())
        self.output.close(complete=True)

    def resume_info(self) -> dict[str, object]:
        """What a later run needs, with the committed offset, to continue this output."""
        return {"format": self.format, "started": self.started}

    def _ending(self) -> bytes:
        return b""

    def _committed(self) -> None:
        pass

    def _rolled_back(self) -> None:
        pass


class JsonArrayWriter(FormatWriter):
    """A JSON array; the brackets are written only around committed events."""

    format = "json"

    def write(self, batch: Batch) -> None:
        if not batch.count:
            return
        write = self.output.write
        between = b",\n"
        write(between if self.started or self._pending else b"[\n")
        regions = batch.regions
        write(regions[0])
        for region in regions[1:]:  # as b",\n".join(regions) would, without the copy
            write(between)
            write(region)
        self._pending = True

    def _ending(self) -> bytes:
        return b"\n]\n" if self.started else b"[]\n"


class JsonLinesWriter(FormatWriter):
    """One event per line."""

    format = "jsonl"

    def write(self, batch: Batch) -> None:
        if not batch.count:
            return
        self.output.write(batch.lines())
        self.output.write(b"\n")
        self._pending = True


class CsvWriter(FormatWriter):
    """CSV with columns fixed by the projection or the first batch (see the module docstring)."""

    format = "csv"

    def __init__(
        self,
        output: Output,
        started: bool,
        projection: tuple[str, ...],
        columns: list[str] | None,
        extra: str | None,
    ) -> None:
        super().__init__(output, started)
        self._projection = projection
        self._columns = columns
        self._extra = extra
        self._header_pending = False

    def write(self, batch: Batch) -> None:
        if not batch.count:
            return
        # One parse for the whole batch: its regions are whole events and the hub's separators.
        records, exact = _parse_events(batch, exact=False)
        header = ""
        if self._columns is None:
            self._columns, self._extra = self._choose_columns(records)
            self._header_pending = True
            header = _csv_rows([self._header()])
        rows = _rows_text(records, self._columns, self._extra, exact)
        if rows is None:  # orjson's numbers cannot be trusted here: json's are
            records, _ = _parse_events(batch, exact=True)
            rows = _rows_text(records, self._columns, self._extra, True)
            assert rows is not None
        if any(b"\\u0000" in region for region in batch.regions):  # how a NUL gets in a string
            rows = _without_nul(rows)
        self.output.write(_csv_bytes(header + rows))
        self._pending = True

    def _choose_columns(self, records: list[dict[str, Any]]) -> tuple[list[str], str | None]:
        if self._projection:
            return list(self._projection), None
        seen: dict[str, None] = {}
        for record in records:
            seen.update(dict.fromkeys(record))
        extra = "extra"
        while extra in seen:
            extra = "_" + extra
        return list(seen), extra

    def _header(self) -> list[str]:
        assert self._columns is not None
        names = self._columns + ([self._extra] if self._extra is not None else [])
        return [_without_nul(name) for name in names]

    def _finish(self) -> None:
        if self._columns is None and self._projection:
            self._columns, self._extra = list(self._projection), None
            self._header_pending = True
            self.output.write(_csv_bytes(_csv_rows([self._header()])))
        super()._finish()

    def resume_info(self) -> dict[str, object]:
        info = super().resume_info()
        committed = not self._header_pending
        info["columns"] = list(self._columns) if committed and self._columns is not None else None
        info["extra"] = self._extra if committed else None
        return info

    def _committed(self) -> None:
        self._header_pending = False

    def _rolled_back(self) -> None:
        if self._header_pending:
            self._columns = None
            self._extra = None
            self._header_pending = False


def _resume_field(resume: dict[str, object], key: str, kind: type) -> Any:
    value = resume.get(key)
    if value is not None and not isinstance(value, kind):
        raise UsageError(f"the resume state is corrupt: {key!r} should be a {kind.__name__}")
    return value


def _resume_started(resume: dict[str, object]) -> bool:
    """Whether the output a resume information describes holds events (version-1 states
    counted them: ``events``)."""
    started = _resume_field(resume, "started", bool)
    if started is not None:
        return bool(started)
    events = _resume_field(resume, "events", int) or 0
    if events < 0:
        raise UsageError(f"the resume state is corrupt: {events} events")
    return events > 0


def format_writer(
    fmt: str,
    output: Output,
    *,
    projection: tuple[str, ...] = (),
    resume: dict[str, object] | None = None,
) -> FormatWriter:
    """Create the writer for format ``fmt`` (one of :data:`FORMATS`) writing into ``output``.

    ``resume`` is the ``resume_info()`` of the earlier run whose output this one continues. It is
    ignored when the output does not hold the earlier bytes (``output.continued`` is false: a pipe
    starts a new document). Without it, a new document starts where the output stands: after
    what a file given as standard output holds (``>>``), as every Unix tool appends there; which
    files may be written after their bytes is the run's decision, not the format's.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if resume is not None and not output.continued:
        resume = None
    if resume is not None:
        if resume.get("format") != fmt:
            raise UsageError(
                f"cannot continue a {resume.get('format')} output as {fmt}: "
                "use the same format as the run being resumed"
            )
        started = _resume_started(resume)
        if started and output.offset == 0:
            raise UsageError(
                f"the resume state is corrupt: events written but {output.offset} bytes committed"
            )
    else:
        started = False
    if fmt == "json":
        return JsonArrayWriter(output, started)
    if fmt == "jsonl":
        return JsonLinesWriter(output, started)
    columns: list[str] | None = None
    extra: str | None = None
    if resume is not None:
        columns = _resume_field(resume, "columns", list)
        extra = _resume_field(resume, "extra", str)
        if columns is not None and not all(isinstance(name, str) for name in columns):
            raise UsageError("the resume state is corrupt: 'columns' should hold strings")
    if columns is None and started:
        raise UsageError("the resume state is corrupt: csv events were written without columns")
    return CsvWriter(output, started, tuple(projection), columns, extra)
