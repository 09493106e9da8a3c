"""hubasync: download events from an Arctic Hub share through its async API.

The library beneath the ``hubasync`` command::

    import hubasync
    client = hubasync.Client("https://hub.example.com/shares/v2/async/abc", apikey="KEY")
    for event in client.events(start="2020-10-01", limit=1000):
        print(event["feed"])
"""

# This file parses and runs on Python 3.6 up to the version check (``python -m hubasync``
# imports it first): no annotations syntax, no ``from __future__ import annotations``. The same
# check and line are in ``async.py``.
import sys
from typing import Optional, Sequence

MINIMUM_PYTHON = (3, 9)


def unsupported_python(version_info: Optional[Sequence[object]] = None) -> Optional[str]:
    """The line to print when this Python is older than MINIMUM_PYTHON, else None."""
    version = sys.version_info if version_info is None else version_info
    if tuple(version[:2]) >= MINIMUM_PYTHON:
        return None
    return "hubasync needs Python {}.{} or newer; this is Python {}".format(
        MINIMUM_PYTHON[0], MINIMUM_PYTHON[1], ".".join(str(part) for part in version[:3]))


def _refuse_unsupported_python() -> None:
    too_old = unsupported_python()
    if too_old is None:
        return
    if sys.argv[:1] == ["-m"]:  # python -m hubasync (argv[0] is "-m" while it is found)
        sys.stderr.write(too_old + "\n")
        raise SystemExit(2)
    raise ImportError(too_old)


_refuse_unsupported_python()

from hubasync.client import Client, Event, Page  # noqa: E402
from hubasync.errors import (  # noqa: E402
    AuthError,
    BadBody,
    BodyTooLarge,
    Busy,
    ExitCode,
    HubasyncError,
    HubUnavailable,
    Interrupted,
    InvalidArgument,
    InvalidArgumentType,
    NetworkError,
    NotFoundError,
    OutputError,
    ProtocolError,
    ProxyAuthError,
    QueryRejected,
    UsageError,
)
from hubasync.version import __version__  # noqa: E402

__all__ = [
    "AuthError",
    "BadBody",
    "Busy",
    "BodyTooLarge",
    "Client",
    "Event",
    "ExitCode",
    "HubUnavailable",
    "HubasyncError",
    "Interrupted",
    "InvalidArgument",
    "InvalidArgumentType",
    "NetworkError",
    "NotFoundError",
    "OutputError",
    "Page",
    "ProtocolError",
    "ProxyAuthError",
    "QueryRejected",
    "UsageError",
    "__version__",
]
