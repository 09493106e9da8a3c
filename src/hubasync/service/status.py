"""The health of each share the sync service follows: a small record beside its state.

The service replaces ``NAME.status.json`` after every turn of the share (atomically: a crash
leaves the old record or the new one); ``hubasync status CONFIG`` reads them all and says, per
share, how many events it wrote, when it last succeeded, its last error, and how far behind it
is. A share is *failing* when its last turn failed, *stale* when it has not succeeded for
:data:`STALE_INTERVALS` intervals (or has never succeeded and the service has run that long).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from typing import Any, List, Optional, Sequence, TextIO

from hubasync.errors import OutputError

STALE_INTERVALS = 3
STALE_MINIMUM = 60.0  # seconds: however short the interval, a share is not stale sooner


@dataclass
class ShareStatus:
    """What the service knows of one share's health (times are Unix seconds)."""

    share: str
    events: int = 0  # events written by the service, all passes together
    pages: int = 0
    started: Optional[float] = None  # the service's first turn of this share
    last_success: Optional[float] = None  # the end of the last turn that went through
    caught_up: Optional[float] = None  # the last time the output held every event known
    last_error: Optional[str] = None
    last_error_time: Optional[float] = None
    failures: int = 0  # turns failed in a row

    def health(self, now: float, interval: float) -> str:
        """``ok``, ``failing`` or ``stale``."""
        if self.failures:
            return "failing"
        since = self.last_success if self.last_success is not None else self.started
        if since is None or now - since > stale_after(interval):
            return "stale"
        return "ok"


def stale_after(interval: float) -> float:
    """Seconds without a success after which a share is stale."""
    return max(STALE_INTERVALS * interval, STALE_MINIMUM)


def load_status(path: str, share: str) -> ShareStatus:
    """The record at ``path``; an empty one if there is none or it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return ShareStatus(share)
    if not isinstance(document, dict):
        return ShareStatus(share)
    known = {field.name for field in fields(ShareStatus)}
    values: dict[str, Any] = {key: value for key, value in document.items() if key in known}
    values["share"] = share
    try:
        return ShareStatus(**values)
    except TypeError:
        return ShareStatus(share)


def save_status(path: str, status: ShareStatus) -> None:
    """Replace the record at ``path`` atomically (a temporary file of its own, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".status-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(status), handle, indent=1, sort_keys=True)
                handle.write("\n")
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except OSError as error:
        raise OutputError(f"cannot write status record {path}: "
                          f"{error.strerror or error}") from error


def _age(now: float, when: Optional[float]) -> str:
    if when is None:
        return "never"
    seconds = max(0, int(now - when))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 172800:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def _behind(now: float, status: ShareStatus) -> str:
    if status.caught_up is None:
        return "not yet caught up"
    seconds = max(0, int(now - status.caught_up))
    return "up to date" if seconds < 1 else f"{seconds}s"


def render_table(statuses: Sequence[ShareStatus], now: float, interval: float,
                 stream: TextIO) -> None:
    """One row per share: health, events, last success, behind, last error."""
    header = ["SHARE", "HEALTH", "EVENTS", "LAST SUCCESS", "BEHIND", "LAST ERROR"]
    rows: List[List[str]] = [header]
    for status in statuses:
        error = status.last_error or ""
        if error and status.last_error_time is not None:
            error = f"{error} ({_age(now, status.last_error_time)})"
        rows.append([status.share, status.health(now, interval), f"{status.events:,}",
                     _age(now, status.last_success), _behind(now, status), error])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]
        stream.write("  ".join(cells).rstrip() + "\n")
