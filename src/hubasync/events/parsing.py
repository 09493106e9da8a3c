"""JSON arrays of events parsed on the hot paths (CSV rows, ``--strict``), fast when possible.

With the optional ``fast`` extra (``pip install 'hubasync[fast]'``, which brings ``orjson``),
:func:`parse_array` tries ``orjson`` first; without it, or whenever ``orjson`` refuses the text,
the standard library's ``json`` parses it, so every verdict and every error message is
``json``'s. The two agree on valid JSON except in two ways, both handled here or by the caller:

- ``json`` also takes what is not standard JSON: ``NaN``, ``Infinity``, ``-Infinity``, numbers
  too large for a float (``1e400`` becomes ``inf``), lone UTF-16 surrogates (``"\\ud800"``).
  ``orjson`` refuses them, so they go to ``json``.
- an integer beyond 64 bits becomes a ``float`` in ``orjson`` and stays exact in ``json``. So a
  value parsed by ``orjson`` is trusted only where it holds no ``float``; :func:`holds_float`
  tells, and a caller that meets a float in ``orjson``'s result parses the text again with
  ``json`` (``exact=True``).

orjson holds about twice what ``json`` holds while it parses, so it parses long arrays a slice of
:data:`SLICE` bytes at a time and leaves to ``json`` a text it cannot cut (one event over
:data:`ORJSON_MAX`): the memory of a parse stays within what ``json`` needed. ``FAST`` says
whether ``orjson`` is used; tests turn it off to run the fallback.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Tuple

_orjson: Any
try:  # the optional "fast" extra; imported by name, so that type checks need no stub
    _orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the installation
    _orjson = None

FAST = _orjson is not None
"""Whether ``orjson`` parses first (false when it is not installed; tests may set it)."""


def refuse_constant(name: str) -> object:
    """``json``'s ``parse_constant`` for strict parsing: ``NaN``, ``Infinity``, ``-Infinity``."""
    raise ValueError(f"{name} is not standard JSON")


def parse_array(text: bytes, *, strict: bool = False, exact: bool = False) -> Tuple[Any, bool]:
    """Parse ``text``; return the value and whether it is exactly what ``json`` returns.

    ``strict`` refuses ``NaN``, ``Infinity`` and ``-Infinity``. ``exact=True`` parses with
    ``json`` only. Raises what ``json.loads`` raises (``ValueError``, ``RecursionError``).
    """
    if FAST and not exact and _orjson is not None:
        try:
            return _orjson_array(text), False
        except (_orjson.JSONDecodeError, _TooLarge):
            pass  # json decides, and words the error
    if strict:
        return json.loads(text, parse_constant=refuse_constant), True
    return json.loads(text), True


SLICE = 128 << 10
"""orjson parses an array of events at most about this many bytes at a time."""
ORJSON_MAX = 1 << 20
"""A longer text that cannot be cut (one large event) is left to ``json``."""


class _TooLarge(Exception):
    pass


def _orjson_array(text: bytes) -> Any:
    """orjson's value of ``text``, an array parsed a slice at a time.

    orjson holds about twice what ``json`` holds while it parses (its own document, then the
    Python values), so a long array is cut after a ``},{`` every :data:`SLICE` bytes and each
    slice parsed as an array of its own: if every slice parses, the whole is that array (the
    slices are joined by the separators' commas). A cut inside a string or inside a nested
    value leaves a slice that does not parse, and then ``json`` parses the whole text.
    """
    if len(text) <= SLICE or text[:1] != b"[" or text[-1:] != b"]":
        if len(text) > ORJSON_MAX:
            raise _TooLarge
        return _orjson.loads(text)
    values: list[Any] = []
    start, end = 1, len(text) - 1
    while True:
        cut = text.find(b"},{", start + SLICE, end) if end - start > SLICE else -1
        if cut < 0:
            if end - start > ORJSON_MAX:
                raise _TooLarge
            values.extend(_orjson.loads(b"[" + text[start:end] + b"]"))
            return values
        values.extend(_orjson.loads(b"[" + text[start : cut + 1] + b"]"))
        start = cut + 2


def holds_float(value: object) -> bool:
    """Whether ``value`` (parsed JSON, nested however deep) holds a ``float`` anywhere."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, list):
            pending.extend(x for x in item if not isinstance(x, str))
        elif isinstance(item, dict):
            pending.extend(x for x in item.values() if not isinstance(x, str))
    return False
