"""Resume state of a run: where to continue and how much output is committed, saved atomically.

The state is a small JSON document (with a ``version``) replaced as a whole on every save: it is
written to a new temporary file of an unpredictable name beside ``PATH`` (created exclusively,
never through a link), synced, and renamed onto ``PATH``, so a crash at any moment leaves either
the old state or the new one, never a mix. Version 2 added what recognises the output
(``output_tail``, ``output_end``); a version-1 state is still read, without them. A state file
that cannot be read or written is an :class:`~hubasync.errors.OutputError`; one whose content is
not a state of a version this one reads is a
:class:`~hubasync.errors.UsageError` (the user must remove it or point elsewhere).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hubasync.errors import OutputError, UsageError
from hubasync.files.leftovers import Listing, list_folder, mkstemp_temporary, remove_temporaries
from hubasync.files.output import fsync_directory

STATE_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


@dataclass
class RunState:
    """What a run has durably done, and what continues it.

    ``fingerprint`` identifies the command (see :func:`fingerprint`): a state is only used by the
    same command. ``token`` continues right after the last committed page (``None``: from the
    start). ``output_offset`` is the committed size of the output; ``writer`` the format
    writer's ``resume_info()``; ``updated`` the UTC time of the last save (ISO 8601).

    ``output_tail`` is the :func:`~hubasync.output.tail_digest` of the output's committed bytes
    (``None``: unknown, as in a version-1 state). ``output_end`` is the size the run left the
    output with when it let go of it cleanly (stopped, failed, or complete); ``None`` while it
    runs, when a ``kill -9`` may leave a torn page past ``output_offset``.

    Version 3 added ``output_identity``, the ``[device, inode]`` of the file the offset is
    about (so that a file moved away, by logrotate say, is told from the new one at its path),
    and ``stalls``, the memory of the run's :class:`~hubasync.core.stalls.StallDetector` (so
    that its bounds hold across stops and restarts), ``record_events``, the events the output
    holds since the share began (all its files together: the sequence number of the next), and
    ``deliveries``, each destination's position in them (see
    :mod:`hubasync.run.delivering`).
    """

    fingerprint: str
    token: str | None = None
    output_offset: int = 0
    events: int = 0
    pages: int = 0
    complete: bool = False
    last_inserted_token: str | None = None
    writer: dict[str, object] = field(default_factory=dict)
    updated: str = ""
    output_tail: str | None = None
    output_end: int | None = None
    output_identity: list[int] | None = None
    stalls: dict[str, Any] = field(default_factory=dict)
    record_events: int = 0
    deliveries: dict[str, Any] = field(default_factory=dict)


_WRITER_KEY = "sink"  # the format writer's resume information, under its name of version 1
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "fingerprint": (str,),
    "token": (str, type(None)),
    "output_offset": (int,),
    "events": (int,),
    "pages": (int,),
    "complete": (bool,),
    "last_inserted_token": (str, type(None)),
    "sink": (dict,),
    "updated": (str,),
}
_V2_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "output_tail": (str, type(None)),
    "output_end": (int, type(None)),
}
_V3_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "output_identity": (list, type(None)),
    "stalls": (dict,),
    "record_events": (int,),
    "deliveries": (dict,),
}
_DIGEST_RE = re.compile(r"[0-9a-f]{16}")


def fingerprint(*parts: object) -> str:
    """A stable hash of ``parts`` (strings, numbers, ``None``, and lists, tuples, dicts of them).

    Two runs are "the same command" when the caller passes equal parts: the share URL without its
    key, the query pairs without ``token`` and per-page ``limit``, the format, the output path.
    """
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _corrupt(path: str, detail: str) -> UsageError:
    return UsageError(
        f"state file {path} is not a usable hubasync state ({detail}): "
        "remove it to start over, or choose another state file"
    )


def _decode(path: str, raw: bytes) -> RunState:
    try:
        document: Any = json.loads(raw)
    except ValueError as exc:
        raise _corrupt(path, f"not JSON: {exc}") from exc
    except RecursionError:  # [[[[... a few MB deep
        raise _corrupt(path, "nested too deep to be a state") from None
    if not isinstance(document, dict):
        raise _corrupt(path, "not a JSON object")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or (
        version not in READABLE_VERSIONS
    ):
        raise _corrupt(path, f"version {version!r}, expected {STATE_VERSION}")
    expected = dict(_FIELD_TYPES)
    if version >= 2:
        expected.update(_V2_FIELD_TYPES)
    if version >= 3:
        expected.update(_V3_FIELD_TYPES)
    values: dict[str, Any] = {}
    for name, kinds in expected.items():
        if name not in document:
            raise _corrupt(path, f"{name!r} is missing")
        value = document[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise _corrupt(path, f"{name!r} has the wrong type")
        values["writer" if name == _WRITER_KEY else name] = value
    for name in ("output_offset", "events", "pages", "output_end"):
        if values.get(name) is not None and values[name] < 0:
            raise _corrupt(path, f"{name!r} is negative")
    if values.get("output_end") is not None and values["output_end"] < values["output_offset"]:
        raise _corrupt(path, "'output_end' is before 'output_offset'")
    identity = values.get("output_identity")
    if identity is not None and (len(identity) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in identity)):
        raise _corrupt(path, "'output_identity' is not [device, inode]")
    _check_stalls(path, values.get("stalls", {}))
    if values.get("record_events", 0) < 0:
        raise _corrupt(path, "'record_events' is negative")
    _check_deliveries(path, values.get("deliveries", {}))
    return RunState(**values)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _identity(value: Any) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 2
                             and all(_count(n) for n in value))


def _check_deliveries(path: str, deliveries: dict[str, Any]) -> None:
    """Each destination's position (counts, an identity or none, the time of its last
    acknowledgement), and the moved files still read."""
    if set(deliveries) - {"positions", "segments", "rotated_from"}:
        raise _corrupt(path, "'deliveries' holds unknown keys")
    positions = deliveries.get("positions", {})
    if not isinstance(positions, dict):
        raise _corrupt(path, "'deliveries.positions' is not an object")
    for name, position in positions.items():
        counts = ("seq", "offset", "acknowledged", "dead", "retries")
        last_ack = position.get("last_ack") if isinstance(position, dict) else None
        if not (isinstance(position, dict) and set(position) == {*counts, "identity", "last_ack"}
                and all(_count(position[key]) for key in counts)
                and _identity(position["identity"])
                and (last_ack is None or isinstance(last_ack, (int, float))
                     and not isinstance(last_ack, bool))):
            raise _corrupt(path, f"'deliveries.positions.{name}' is not a position")
    segments = deliveries.get("segments", [])
    if not isinstance(segments, list) or not all(
            isinstance(s, dict) and set(s) == {"identity", "end"} and s["identity"] is not None
            and _identity(s["identity"]) and _count(s["end"]) for s in segments):
        raise _corrupt(path, "'deliveries.segments' is not a list of files")
    rotated = deliveries.get("rotated_from")
    if rotated is not None and not (
            isinstance(rotated, dict) and set(rotated) == {"identity", "end"}
            and rotated["identity"] is not None and _identity(rotated["identity"])
            and _count(rotated["end"])):
        raise _corrupt(path, "'deliveries.rotated_from' is not a file")


def _check_stalls(path: str, stalls: dict[str, Any]) -> None:
    """The stall detector's memory: a count of empty pages, and two lists of digests."""
    empty = stalls.get("empty_pages", 0)
    if isinstance(empty, bool) or not isinstance(empty, int) or empty < 0:
        raise _corrupt(path, "'stalls.empty_pages' is not a count")
    for key in ("tokens", "pages"):
        items = stalls.get(key, [])
        if not isinstance(items, list) or not all(
                isinstance(item, str) and _DIGEST_RE.fullmatch(item) for item in items):
            raise _corrupt(path, f"'stalls.{key}' is not a list of digests")
    unknown = set(stalls) - {"empty_pages", "tokens", "pages"}
    if unknown:
        raise _corrupt(path, f"'stalls' holds unknown keys {sorted(unknown)}")


def load_state(path: str) -> RunState | None:
    """Read the state at ``path``; ``None`` when there is none.

    Raises :class:`OutputError` when the file cannot be read, :class:`UsageError` when it is not
    a valid state.
    """
    from hubasync.files.reading import STATE_FILE_LIMIT, UnreadableFile, read_bounded

    try:
        raw = read_bounded(path, STATE_FILE_LIMIT, "state file")
    except UnreadableFile as exc:
        if exc.missing:
            return None
        raise
    return _decode(path, raw)


def save_state(path: str, state: RunState) -> None:
    """Replace the state at ``path`` with ``state`` atomically and durably.

    Sets ``state.updated`` to the current UTC time first.
    """
    state.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = {"version": STATE_VERSION, **dataclasses.asdict(state)}
    document[_WRITER_KEY] = document.pop("writer")
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
    temporary = ""
    try:
        fd, temporary = _temporary_beside(path)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        fsync_directory(path)
    except BaseException as exc:
        if temporary:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write state file {path}: {exc.strerror or exc}") from exc
        raise


def _temporary_beside(path: str) -> tuple[int, str]:
    """A new file of an unpredictable name in the directory of ``path``, created exclusively
    (``O_EXCL``, never through a link): its descriptor and name."""
    directory, base = os.path.split(os.path.abspath(path))
    return tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)


def _remove_leftovers(path: str, listing: Listing) -> None:
    """Remove temporary files a killed save left (and the fixed name versions before 2 used)."""
    remove_temporaries(path, mkstemp_temporary(os.path.basename(path)), listing)
    try:
        os.unlink(path + ".tmp")  # removes a link, never its target
    except OSError:
        pass


def check_state_path(path: str, listing: Listing = list_folder) -> None:
    """Check, before any request, that a state can be kept at ``path``.

    Holding the state's lock (:func:`hubasync.lock.lock_file`), call it first: it also removes the
    temporary files a killed save left beside ``path``.

    Raises :class:`OutputError` when ``path`` is a directory, its directory is missing or not
    writable, or an existing state cannot be read.
    """
    if os.path.isdir(path):
        raise OutputError(f"cannot write state file {path}: {os.strerror(errno.EISDIR)}")
    try:
        fd, temporary = _temporary_beside(path)
        os.close(fd)
        os.unlink(temporary)
        _remove_leftovers(path, listing)
        if os.path.exists(path):
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise OutputError(f"cannot write state file {path}: {exc.strerror or exc}") from exc
