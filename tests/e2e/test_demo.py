"""``make demo`` (tools/demo.py) as a newcomer runs it: to a terminal or a pipe, and redirected
to a file (``make demo > demo.log``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from .helpers import ROOT

DEMO = [sys.executable, os.path.join(ROOT, "tools", "demo.py")]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def test_demo_runs_its_steps_and_stops_the_simulator() -> None:
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=environment(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("simulator running at http://127.0.0.1:")
    assert done.stdout.count("\n$ ./async.py ") == 4
    assert '{"count": 5000}\n' in done.stdout
    assert done.stdout.endswith("simulator stopped\n")
    assert "Traceback" not in done.stderr


def test_demo_redirected_to_a_file(tmp_path: Any) -> None:
    # as the shell opens it for "make demo > demo.log": truncated, not in append mode; the
    # demo's first line is in it before the first download writes
    log = tmp_path / "demo.log"
    with open(log, "w") as stdout:
        done = subprocess.run(DEMO, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              timeout=300, cwd=ROOT, env=environment(),
                              stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert text.startswith("simulator running at ")
    assert text.endswith("simulator stopped\n")
    # each step's document is whole: the first one, three events, is a JSON array
    first = text.split("$ ./async.py ", 2)[1].split("\n", 1)[1].split("\n\n", 1)[0]
    assert len(json.loads(first)) == 3
