#!/usr/bin/env python3
"""The ``hubasync`` command line with no install: ``./async.py URL ...`` from a checkout (it puts
``src/`` beside it on the path), and the ``__main__.py`` of ``dist/hubasync.pyz`` (``make pyz``).

It replaces the vendor's example ``async.py`` script, and takes the same arguments.

This file parses and runs on Python 3.6 up to the version check below (no annotations, no
``from __future__ import annotations``), so that an older Python prints one line and exits 2
instead of failing with a SyntaxError; the package is imported only after the check. The same
check and line are in ``hubasync/__init__.py`` (for ``python -m hubasync``).
"""

import os
import sys

MINIMUM_PYTHON = (3, 9)


def unsupported_python(version_info=None):
    """The line to print when this Python is older than MINIMUM_PYTHON, else None."""
    version = sys.version_info if version_info is None else version_info
    if tuple(version[:2]) >= MINIMUM_PYTHON:
        return None
    return "hubasync needs Python {}.{} or newer; this is Python {}".format(
        MINIMUM_PYTHON[0], MINIMUM_PYTHON[1], ".".join(str(part) for part in version[:3]))


def main():
    too_old = unsupported_python()
    if too_old is not None:
        sys.stderr.write(too_old + "\n")
        return 2
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
    if os.path.isdir(source):  # a checkout; in the .pyz, the package sits beside this file
        sys.path.insert(0, source)
    from hubasync.cli.main import main as command_line

    return command_line()


if __name__ == "__main__":
    sys.exit(main())
