"""hubasync: download events from an Arctic Hub share through its async API.

The library beneath the ``hubasync`` command::

    import hubasync
    client = hubasync.Client("https://hub.example.com/shares/v2/async/abc", apikey="KEY")
    for event in client.events(start="2020-10-01", limit=1000):
        print(event["feed"])
"""

from __future__ import annotations

__version__ = "0.1.0"

from .client import Client, Event, Page
from .errors import (
    AuthError,
    BadBody,
    BodyTooLarge,
    ExitCode,
    HubasyncError,
    HubUnavailable,
    Interrupted,
    NetworkError,
    NotFoundError,
    OutputError,
    ProtocolError,
    QueryRejected,
    UsageError,
)

__all__ = [
    "AuthError",
    "BadBody",
    "BodyTooLarge",
    "Client",
    "Event",
    "ExitCode",
    "HubUnavailable",
    "HubasyncError",
    "Interrupted",
    "NetworkError",
    "NotFoundError",
    "OutputError",
    "Page",
    "ProtocolError",
    "QueryRejected",
    "UsageError",
    "__version__",
]
