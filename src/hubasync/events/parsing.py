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

``FAST`` says whether ``orjson`` is used; tests turn it off to run the fallback.
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
            return _orjson.loads(text), False
        except _orjson.JSONDecodeError:
            pass  # json decides, and words the error
    if strict:
        return json.loads(text, parse_constant=refuse_constant), True
    return json.loads(text), True


def holds_float(value: object) -> bool:
    """Whether ``value`` (parsed JSON) holds a ``float`` anywhere."""
    if isinstance(value, float):
        return True
    if isinstance(value, list):
        return any(not isinstance(item, str) and holds_float(item) for item in value)
    if isinstance(value, dict):
        return any(not isinstance(item, str) and holds_float(item) for item in value.values())
    return False
