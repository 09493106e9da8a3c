"""Resume state of a run: where to continue and how much output is committed, saved atomically.

The state is a small JSON document (with a ``version``) replaced as a whole on every save: it is
written to ``PATH.tmp``, synced, and renamed onto ``PATH``, so a crash at any moment leaves either
the old state or the new one, never a mix. A state file that cannot be read or written is an
:class:`~hubasync.errors.OutputError`; one whose content is not a state of this version is a
:class:`~hubasync.errors.UsageError` (the user must remove it or point elsewhere).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hubasync.errors import OutputError, UsageError
from hubasync.output import fsync_directory

STATE_VERSION = 1

_O_BINARY: int = getattr(os, "O_BINARY", 0)


@dataclass
class RunState:
    """What a run has durably done, and what continues it.

    ``fingerprint`` identifies the command (see :func:`fingerprint`): a state is only used by the
    same command. ``token`` continues right after the last committed page (``None``: from the
    start). ``output_offset`` is the committed size of the output; ``sink`` the sink's
    ``resume_info()``; ``updated`` the UTC time of the last save (ISO 8601).
    """

    fingerprint: str
    token: str | None = None
    output_offset: int = 0
    events: int = 0
    pages: int = 0
    complete: bool = False
    last_inserted_token: str | None = None
    sink: dict[str, object] = field(default_factory=dict)
    updated: str = ""


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
    if not isinstance(document, dict):
        raise _corrupt(path, "not a JSON object")
    version = document.get("version")
    if version != STATE_VERSION:
        raise _corrupt(path, f"version {version!r}, expected {STATE_VERSION}")
    values: dict[str, Any] = {}
    for name, kinds in _FIELD_TYPES.items():
        if name not in document:
            raise _corrupt(path, f"{name!r} is missing")
        value = document[name]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise _corrupt(path, f"{name!r} has the wrong type")
        values[name] = value
    for name in ("output_offset", "events", "pages"):
        if values[name] < 0:
            raise _corrupt(path, f"{name!r} is negative")
    return RunState(**values)


def load_state(path: str) -> RunState | None:
    """Read the state at ``path``; ``None`` when there is none.

    Raises :class:`OutputError` when the file cannot be read, :class:`UsageError` when it is not
    a valid state.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError(f"cannot read state file {path}: {exc.strerror or exc}") from exc
    return _decode(path, raw)


def save_state(path: str, state: RunState) -> None:
    """Replace the state at ``path`` with ``state`` atomically and durably.

    Sets ``state.updated`` to the current UTC time first.
    """
    state.updated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = {"version": STATE_VERSION, **dataclasses.asdict(state)}
    data = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")
    temporary = path + ".tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_BINARY, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        fsync_directory(path)
    except OSError as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise OutputError(f"cannot write state file {path}: {exc.strerror or exc}") from exc


def check_state_path(path: str) -> None:
    """Check, before any request, that a state can be kept at ``path``.

    Raises :class:`OutputError` when ``path`` is a directory, its directory is missing or not
    writable, or an existing state cannot be read.
    """
    if os.path.isdir(path):
        raise OutputError(f"cannot write state file {path}: {os.strerror(errno.EISDIR)}")
    temporary = path + ".tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | _O_BINARY, 0o666)
        os.close(fd)
        os.unlink(temporary)
        if os.path.exists(path):
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise OutputError(f"cannot write state file {path}: {exc.strerror or exc}") from exc
