"""Run a script as if orjson (the ``fast`` extra) were not installed: ``python
bench/without_orjson.py SCRIPT ARGS...``. bench/run.py uses it to measure the standard
library's path of CSV and ``--strict`` on a machine where orjson is installed."""

from __future__ import annotations

import runpy
import sys

sys.modules["orjson"] = None  # type: ignore[assignment]  # import orjson now fails
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
