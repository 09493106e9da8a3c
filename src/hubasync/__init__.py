"""hubasync: download events from an Arctic Hub share through its async API.

The library beneath the ``hubasync`` command::

    import hubasync
    client = hubasync.Client("https://hub.example.com/shares/v2/async/abc", apikey="KEY")
    for event in client.events(start="2020-10-01", limit=1000):
        print(event["feed"])
"""

from __future__ import annotations

__version__ = "0.1.0"
