#!/usr/bin/env python3
"""``make pyz``: build ``dist/hubasync.pyz``, the downloader as one file (a zipapp).

Copied alone to another machine, ``python3 hubasync.pyz URL ...`` does what ``hubasync`` does.
The simulator is left out: it is a development tool.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipapp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "src", "hubasync")
MAIN = "import sys\nfrom hubasync.cli.main import main\nsys.exit(main())\n"


def build(target: str) -> str:
    with tempfile.TemporaryDirectory() as staging:
        shutil.copytree(PACKAGE, os.path.join(staging, "hubasync"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "sim"))
        with open(os.path.join(staging, "__main__.py"), "w", encoding="utf-8") as handle:
            handle.write(MAIN)
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
