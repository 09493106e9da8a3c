"""The settings of one run, checked: what the command line, the library or a service's share
hands to a :class:`~hubasync.run.resumable.ResumableRun`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from hubasync.core.bounds import DEFAULTS, MAX_LAG, Bounds
from hubasync.core.params import Query
from hubasync.core.urls import ShareUrl
from hubasync.transport.proxy import secrets_of

EXISTING = ("refuse", "append", "overwrite")


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, checked."""

    share: ShareUrl
    apikey: str
    query: Query
    limit: Optional[int] = None
    token: Optional[str] = None
    format: str = "json"
    output: Optional[str] = None
    state: Optional[str] = None
    follow: bool = False
    interval: float = 60.0
    progress: Optional[bool] = None  # None: on a terminal only
    progress_total: bool = False  # --total: a count query first, for the progress line's total
    existing: str = "refuse"  # an existing -o FILE no state describes: refuse, append, overwrite
    quiet: bool = False
    bounds: Bounds = DEFAULTS
    cacert: Optional[str] = None
    debug: bool = False
    recover: bool = False
    strict: bool = False
    proxy: Optional[str] = None  # None: from the environment; "": none; else the proxy's URL
    # A service's share: the output is written in place, grows pass after pass, is closed
    # between turns and may be rotated.
    in_place: bool = False
    # Where the events go besides the output (the local record, JSON lines): (name,
    # hubasync.delivery.DestinationConfig) pairs; max_lag: events a destination may fall behind
    # before fetching from the hub waits for it.
    destinations: Tuple[Tuple[str, Any], ...] = ()
    max_lag: int = int(MAX_LAG.default)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no printed line may show: the API key, the proxy's credentials, and the
        destinations' secrets (a HEC token, a key's passphrase, a SASL password)."""
        return (self.apikey, *secrets_of(self.proxy),
                *(secret.reveal() for _, destination in self.destinations
                  for secret in destination.secrets.values()))

    def __repr__(self) -> str:
        return f"RunSettings({self.share.display()!r}, ...)"
