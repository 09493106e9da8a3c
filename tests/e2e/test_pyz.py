"""The one-file build, run from an empty folder in isolated mode."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

from .helpers import ROOT, share

# The interpreter outside the virtual environment, where hubasync is not installed.
PYTHON = getattr(sys, "_base_executable", sys.executable)


def test_pyz_runs_alone_from_an_empty_folder(sim: Any, tmp_path: Any) -> None:
    built = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_pyz.py"),
                            str(tmp_path / "build" / "hubasync.pyz")],
                           capture_output=True, text=True, check=True)
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(built.stdout.strip(), alone / "hubasync.pyz")
    (tmp_path / "build").rename(tmp_path / "gone")
    environment = {"PATH": "/usr/bin:/bin", "APIKEY": "demo-key"}
    done = subprocess.run([PYTHON, "-I", "hubasync.pyz", share(sim, "demo", "/count")],
                          cwd=alone, capture_output=True, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": len(sim.share_events("demo"))}
    done = subprocess.run([PYTHON, "-I", "hubasync.pyz", share(sim), "--limit=5",
                           "--sort=_id", "--format=jsonl"],
                          cwd=alone, capture_output=True, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == sim.share_events("demo")[:5]
    version = subprocess.run([PYTHON, "-I", "hubasync.pyz", "--version"], cwd=alone,
                             capture_output=True, text=True, env=environment)
    assert version.stdout.startswith("hubasync ")
