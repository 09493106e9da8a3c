#!/usr/bin/env python3
"""``make pyz``: build ``dist/hubasync.pyz``, the downloader as one file (a zipapp).

Copied alone to another machine, ``python3 hubasync.pyz URL ...`` does what ``hubasync`` does.
Its ``__main__.py`` is ``async.py`` (which checks the Python version before anything else). The
simulator is left out: it is a development tool.

``tomli`` (pure Python, MIT), which ``sync`` and ``status`` need to read their TOML config on
Python 3.9 and 3.10, is bundled too, with its licence: pip fetches it (``pip install --target``),
honouring pip's own settings (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``...). When
it cannot be fetched, the build says so in one line on stderr and goes on without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "src", "hubasync")
MAIN = os.path.join(ROOT, "async.py")
TOMLI = "tomli>=1.1"


def fetch_tomli(into: str) -> Optional[str]:
    """Put ``tomli`` (and its dist-info, which holds its licence) into ``into``; returns None,
    or why it could not."""
    with tempfile.TemporaryDirectory() as fetched:
        # the pure-Python wheel (not one compiled for this interpreter, which a zip could not
        # load), for the oldest Python the .pyz runs on
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                   "--disable-pip-version-check", "--no-compile", "--only-binary=:all:",
                   "--implementation=py", "--abi=none", "--platform=any",
                   "--python-version=3.9", "--target", fetched, TOMLI]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
        if done.returncode != 0:
            said = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            return said[-1] if said else f"pip exited with {done.returncode}"
        for name in os.listdir(fetched):
            if name == "tomli" or (name.startswith("tomli-") and name.endswith(".dist-info")):
                shutil.copytree(os.path.join(fetched, name), os.path.join(into, name),
                                ignore=shutil.ignore_patterns("__pycache__"))
    if not os.path.isdir(os.path.join(into, "tomli")):
        return "pip installed no tomli package"
    return None


def build(target: str) -> str:
    with tempfile.TemporaryDirectory() as staging:
        shutil.copytree(PACKAGE, os.path.join(staging, "hubasync"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sim"))
        shutil.copyfile(MAIN, os.path.join(staging, "__main__.py"))
        missing = fetch_tomli(staging)
        if missing is not None:
            print(f"build_pyz: tomli not bundled ({missing}): the .pyz's sync and status will "
                  "need Python 3.11+ (README, Install, says how to add it)", file=sys.stderr)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        zipapp.create_archive(staging, target, interpreter="/usr/bin/env python3",
                              compressed=True)
    return target


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "dist", "hubasync.pyz")
    print(build(target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
