"""hubasync: download events from an Arctic Hub share through its async API.

The library beneath the ``hubasync`` command::

    import hubasync
    client = hubasync.Client("https://hub.example.com/shares/v2/async/abc", apikey="KEY")
    for event in client.events(start="2020-10-01", limit=1000):
        print(event["feed"])
"""

from __future__ import annotations

from hubasync.client import Client, Event, Page
from hubasync.errors import (
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
from hubasync.version import __version__

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
