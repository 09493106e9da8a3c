"""The health of each share the sync service follows: a small record beside its state.

The service replaces ``NAME.status.json`` after every turn of the share (atomically and
durably: a temporary file of its own, synced, renamed, the directory synced; a crash leaves the
old record or the new one); ``hubasync status CONFIG`` reads them all and says, per share, how
many events it wrote, when it last succeeded, its last error, and how far behind it is. A share
is *failing* when its last turn failed, *stale* when it has not succeeded for
:data:`STALE_INTERVALS` intervals (or has never succeeded and the service has run that long),
*unreadable* when its record cannot be read or is corrupt.

No secret is at rest here: :func:`save_status` redacts the record's text with the secrets it is
given (and ``apikey=`` and ``Authorization`` values whatever they are), and
:func:`render_table` redacts again and shows control characters escaped.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Sequence, TextIO, Union

from hubasync.core.redaction import redact
from hubasync.errors import OutputError
from hubasync.files.leftovers import Listing, list_folder, mkstemp_temporary, remove_temporaries
from hubasync.files.reading import UnreadableFile, read_bounded

STALE_INTERVALS = 3
STALE_MINIMUM = 60.0  # seconds: however short the interval, a share is not stale sooner
STATUS_LIMIT = 1 << 20  # bytes of a status record read back
MAX_ERROR_LENGTH = 1000  # characters of the last error kept in a record


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
    # per destination: acknowledged, dead, retries (counts), lag (events behind), last_ack
    # (time), last_error (text or null)
    destinations: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def health(self, now: float, interval: float) -> str:
        """``ok``, ``failing`` or ``stale``."""
        if self.failures:
            return "failing"
        since = self.last_success if self.last_success is not None else self.started
        if since is None or now - since > stale_after(interval):
            return "stale"
        return "ok"


@dataclass(frozen=True)
class UnreadableStatus:
    """A share whose record could not be read: ``reason`` says why, in one line."""

    share: str
    reason: str

    def health(self, now: float, interval: float) -> str:
        return "unreadable"


StatusRow = Union[ShareStatus, UnreadableStatus]

_COUNTS = ("events", "pages", "failures")
_TIMES = ("started", "last_success", "caught_up", "last_error_time")


def stale_after(interval: float) -> float:
    """Seconds without a success after which a share is stale."""
    return max(STALE_INTERVALS * interval, STALE_MINIMUM)


def load_status(path: str, share: str) -> ShareStatus:
    """The record at ``path``; an empty one if there is none.

    Raises :class:`OutputError` naming the record when it cannot be read (not a regular file,
    larger than :data:`STATUS_LIMIT`) or is corrupt (not JSON, not an object, a field of the
    wrong type): never a record that would fail later.
    """
    try:
        raw = read_bounded(path, STATUS_LIMIT, "status record")
    except UnreadableFile as error:
        if error.missing:
            return ShareStatus(share)
        raise
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise _corrupt(path, f"not JSON: {type(error).__name__}") from None
    if not isinstance(document, dict):
        raise _corrupt(path, f"a JSON {_json_type(document)}, not an object")
    values: Dict[str, Any] = {}
    for name in _COUNTS:
        value = document.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _corrupt(path, f"{name} is {_json_type(value)}, not a count")
        values[name] = value
    for name in _TIMES:
        value = document.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise _corrupt(path, f"{name} is {_json_type(value)}, not a time")
        values[name] = None if value is None else float(value)
    last_error = document.get("last_error")
    if last_error is not None and not isinstance(last_error, str):
        raise _corrupt(path, f"last_error is {_json_type(last_error)}, not text")
    destinations = document.get("destinations", {})
    if not isinstance(destinations, dict) or not all(
            isinstance(name, str) and _destination_ok(entry)
            for name, entry in destinations.items()):
        raise _corrupt(path, "destinations is not a table of destinations' states")
    return ShareStatus(share, last_error=last_error, destinations=destinations, **values)


def _destination_ok(entry: Any) -> bool:
    if not isinstance(entry, dict) or set(entry) != {"acknowledged", "dead", "retries", "lag",
                                                     "last_ack", "last_error"}:
        return False
    counts = all(isinstance(entry[key], int) and not isinstance(entry[key], bool)
                 and entry[key] >= 0 for key in ("acknowledged", "dead", "retries", "lag"))
    last_ack = entry["last_ack"]
    time_ok = last_ack is None or (isinstance(last_ack, (int, float))
                                   and not isinstance(last_ack, bool) and math.isfinite(last_ack))
    return counts and time_ok and (entry["last_error"] is None
                                   or isinstance(entry["last_error"], str))


def _corrupt(path: str, why: str) -> OutputError:
    return OutputError(f"status record {path} is corrupt ({why}): remove it")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number" if math.isfinite(value) else "not a finite number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def save_status(path: str, status: ShareStatus, secrets: Iterable[str] = ()) -> None:
    """Replace the record at ``path`` atomically, its text redacted first.

    Atomically, not durably: a crash may lose the record's last update (the next turn writes it
    again), never leave half of one; it is a report, and syncing it after every turn of every
    share would cost the service more than all its states do.

    ``secrets`` are the share's (its API key, the proxy's credentials: ``ServiceConfig.secrets``
    holds them all); ``apikey=`` and ``Authorization`` values go whatever they are. The last
    error is kept to :data:`MAX_ERROR_LENGTH` characters. A failed save leaves no temporary
    file and raises :class:`OutputError`.
    """
    record = redacted(status, secrets)
    data = (json.dumps(asdict(record), indent=1, sort_keys=True) + "\n").encode("utf-8")
    folder, base = os.path.split(os.path.abspath(path))
    temporary = ""
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
        temporary = ""
    except OSError as error:
        raise OutputError(f"cannot write status record {path}: "
                          f"{error.strerror or error}") from error
    finally:
        if temporary:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def redacted(status: ShareStatus, secrets: Iterable[str] = ()) -> ShareStatus:
    """A copy of ``status`` whose text holds no secret (and at most
    :data:`MAX_ERROR_LENGTH` characters of the last error)."""
    destinations = {name: dict(entry, last_error=_clean(entry["last_error"], secrets))
                     for name, entry in status.destinations.items()}
    return replace(status, last_error=_clean(status.last_error, secrets),
                   destinations=destinations)


def _clean(error: Optional[str], secrets: Iterable[str]) -> Optional[str]:
    if error is None:
        return None
    error = redact(error, *secrets)
    return error[:MAX_ERROR_LENGTH - 3] + "..." if len(error) > MAX_ERROR_LENGTH else error


def remove_status_leftovers(path: str, listing: Listing = list_folder) -> None:
    """Remove the temporary files a killed :func:`save_status` of ``path`` left behind.

    Call it at start, holding the share's lock: only this record's temporaries are removed
    (``.NAME.status.json.XXXXXXXX.tmp``), never another record's or another share's.
    """
    remove_temporaries(path, mkstemp_temporary(os.path.basename(path)), listing)


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


def behind_seconds(now: float, status: ShareStatus) -> Optional[float]:
    """Seconds since the share's output was last known caught up, or since the service began
    following it if it never was: what ``hubasync_behind_seconds`` says too. None when the
    record says neither."""
    since = status.caught_up if status.caught_up is not None else status.started
    return None if since is None else max(0.0, now - since)


def _behind(now: float, status: ShareStatus) -> str:
    seconds = behind_seconds(now, status)
    if seconds is None:
        return "not yet started"
    text = "up to date" if seconds < 1 else f"{int(seconds)}s"
    return text if status.caught_up is not None else f"{text} (never caught up)"


def render_table(rows: Sequence[StatusRow], now: float, interval: float, stream: TextIO,
                 secrets: Iterable[str] = ()) -> None:
    """One row per share: health, events, last success, behind, last error (for an unreadable
    record: why). The error is redacted with ``secrets`` and every cell is shown with its
    control characters escaped (``\\x1b``): a record can neither show a secret nor drive the
    terminal."""
    secrets = tuple(secrets)
    header = ["SHARE", "HEALTH", "EVENTS", "LAST SUCCESS", "BEHIND", "LAST ERROR"]
    table: List[List[str]] = [header]
    for row in rows:
        if isinstance(row, UnreadableStatus):
            cells = [row.share, "unreadable", "?", "?", "?", row.reason]
        else:
            error = row.last_error or ""
            if error and row.last_error_time is not None:
                error = f"{error} ({_age(now, row.last_error_time)})"
            cells = [row.share, row.health(now, interval), f"{row.events:,}",
                     _age(now, row.last_success), _behind(now, row), error]
        cells[-1] = redact(cells[-1], *secrets)
        table.append([escape_controls(cell) for cell in cells])
        for name, entry in getattr(row, "destinations", {}).items():
            ack = entry["last_ack"]
            notes = [entry["last_error"] or "",
                     f"{entry['retries']:,} retries" if entry["retries"] else "",
                     f"{entry['dead']:,} dead letters" if entry["dead"] else ""]
            cells = [f"  -> {name}", "behind" if entry["lag"] else "delivered",
                     f"{entry['acknowledged']:,}", _age(now, ack) if ack else "never",
                     f"{entry['lag']:,} events",
                     redact("; ".join(note for note in notes if note), *secrets)]
            table.append([escape_controls(cell) for cell in cells])
    widths = [max(len(line[column]) for line in table) for column in range(len(header) - 1)]
    for line in table:
        padded = [cell.ljust(width) for cell, width in zip(line, widths)] + [line[-1]]
        stream.write("  ".join(padded).rstrip() + "\n")


def escape_controls(text: str) -> str:
    """``text`` with every character that is not printable (control characters, ESC, line
    breaks, bidirectional overrides) written as a Python escape: ``\\x1b``, ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
