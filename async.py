#!/usr/bin/env python3
"""The seed's command line, runnable from a checkout with no install: ``./async.py URL ...``.

It puts ``src/`` on the path and runs the same command line as the installed ``hubasync``.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from hubasync.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
