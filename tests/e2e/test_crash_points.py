"""Killed at every step of the commit sequence, a run resumed loses and repeats nothing.

The run is started in a process whose file operations (``os.write``, ``os.fsync``,
``os.ftruncate``, ``os.replace``, ``os.unlink``) are counted; at the N-th one the process dies on
the spot (``os._exit``, as ``kill -9`` would leave it, before the operation). For every N until a
run gets through, the same command is then run again, with new events inserted in between, and
the output must hold every event of the share exactly once, in insertion order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from hubasync.sim import SimConfig, Simulator

from .helpers import ROOT, read_jsonl, run, share

CRASHER = """
import os, sys
sys.path.insert(0, os.path.join(sys.argv[2], "src"))
limit, seen = int(sys.argv[1]), [0]
def counted(real):
    def step(*args, **kwargs):
        seen[0] += 1
        if seen[0] == limit:
            os._exit(137)
        return real(*args, **kwargs)
    return step
for name in ("write", "fsync", "ftruncate", "replace", "unlink"):
    setattr(os, name, counted(getattr(os, name)))
from hubasync.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def crash_at(step: int, args: list[str]) -> int:
    environment = dict(os.environ, APIKEY="demo-key")
    done = subprocess.run([sys.executable, "-c", CRASHER, str(step), ROOT, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
                          timeout=120)
    return done.returncode


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_crash_at_any_step_then_a_resume_gives_every_event_once(tmp_path: Any,
                                                                   fmt: str) -> None:
    step = 0
    while True:
        step += 1
        assert step < 100, "the run never got through"
        folder = tmp_path / f"step{step}"
        folder.mkdir()
        out, state = folder / f"out.{fmt}", folder / "out.state"
        with Simulator(SimConfig(port=0, events=23, page_max=10, retry_after=0.05)) as sim:
            args = [share(sim), "--sort=_id", f"--format={fmt}", "-o", str(out), "--state",
                    str(state), "--quiet"]
            code = crash_at(step, args)
            if code == 0:
                break
            assert code == 137
            sim.append_events("demo", 2)  # the share grows while the run is down
            again = run(args)
            assert again.code == 0, (step, again.stderr)
            expected = sim.share_events("demo")
        if fmt == "jsonl":
            assert read_jsonl(str(out)) == expected, f"killed at step {step}"
        else:
            got = json.loads(out.read_bytes())
            assert got == expected[:len(got)] and len(got) >= 23, f"killed at step {step}"
    assert step > 10  # every write, sync and rename of the run was a place to die
