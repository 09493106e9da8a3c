"""The sync service's log: one line per notable event, on stderr, with no secret in it.

A line is logfmt by default (``time=... level=info msg="pass done" share=cust42 events=1200``)
or, with ``--log-format json``, one JSON object (``{"time": ..., "level": ..., "msg": ...,
"share": ..., ...}``). Every value and every whole line passes through ``redaction.redact`` with
the known secrets, so an API key reaches neither journald nor a log shipper.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, TextIO

from hubasync.core.redaction import redact

LOG_FORMATS = ("logfmt", "json")
LEVELS = ("debug", "info", "warning", "error")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_BARE_RE = re.compile(r"[^\s\"\\=\x00-\x1f\x7f]+")
_LOGFMT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_RESERVED = ("time", "level", "msg")


class ServiceLog:
    """Writes log lines to a stream (stderr by default); thread-safe, one write per line."""

    def __init__(self, stream: Optional[TextIO] = None, *, log_format: str = "logfmt",
                 secrets: Iterable[str] = (), debug: bool = False,
                 wall_time: Callable[[], float] = time.time) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
        self._stream = stream
        self._format = log_format
        self._secrets: List[str] = []
        self._debug = debug
        self._wall_time = wall_time
        self._lock = threading.Lock()
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """More strings never to write (keys read after a reload, say)."""
        with self._lock:
            known = set(self._secrets) | {secret for secret in secrets if secret}
            self._secrets = sorted(known, key=len, reverse=True)

    def debug(self, msg: str, share: Optional[str] = None, **fields: object) -> None:
        if self._debug:
            self.log("debug", msg, share, **fields)

    def info(self, msg: str, share: Optional[str] = None, **fields: object) -> None:
        self.log("info", msg, share, **fields)

    def warning(self, msg: str, share: Optional[str] = None, **fields: object) -> None:
        self.log("warning", msg, share, **fields)

    def error(self, msg: str, share: Optional[str] = None, **fields: object) -> None:
        self.log("error", msg, share, **fields)

    def log(self, level: str, msg: str, share: Optional[str] = None, **fields: object) -> None:
        """Write one line; fields whose value is None are left out."""
        if level not in LEVELS:
            raise ValueError(f"level {level!r} is not one of {', '.join(LEVELS)}")
        for key in fields:
            if key in _RESERVED or not _KEY_RE.fullmatch(key):
                raise ValueError(f"{key!r} cannot be a log field's name")
        record: Dict[str, object] = {"time": _timestamp(self._wall_time()), "level": level,
                                     "msg": msg}
        if share is not None:
            record["share"] = share
        record.update((key, value) for key, value in fields.items() if value is not None)
        with self._lock:
            secrets = self._secrets
            clean = {key: self._redact(value, secrets) for key, value in record.items()}
            line = _json_line(clean) if self._format == "json" else _logfmt_line(clean)
            line = str(self._redact(line, secrets))
            stream = self._stream if self._stream is not None else sys.stderr
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # nowhere left to say it; the service goes on

    @staticmethod
    def _redact(value: object, secrets: List[str]) -> object:
        if isinstance(value, (bool, int, float)):
            return value
        return redact(str(value), *secrets)


def _timestamp(when: float) -> str:
    seconds = int(when)
    millis = int((when - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def _logfmt_line(record: Dict[str, object]) -> str:
    return " ".join(f"{key}={_logfmt_value(value)}" for key, value in record.items())


def _logfmt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _BARE_RE.fullmatch(text):
        return text
    escaped = "".join(_LOGFMT_ESCAPES.get(char) or
                      (f"\\u{ord(char):04x}" if ord(char) < 32 or ord(char) == 127 else char)
                      for char in text)
    return f'"{escaped}"'


def _json_line(record: Dict[str, object]) -> str:
    def plain(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, (bool, int, float, str)):
            return value
        return str(value)

    return json.dumps({key: plain(value) for key, value in record.items()},
                      ensure_ascii=True, separators=(", ", ": "))
