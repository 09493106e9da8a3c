"""The shares' events in memory: encoded once, indexed by insertion id and by (time, id)."""

from __future__ import annotations

import json
import threading
import time
from bisect import insort
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .generator import EventGenerator
from .times import event_time

ID_BITS = 32
ID_MASK = (1 << ID_BITS) - 1


class Share:
    """One event store (an API share, or one index of a notification share).

    Event ids are 1-based insertion positions. ``tkeys`` holds ``time << 32 | id`` sorted, the
    time order the hub sorts by default (ties broken by insertion). Events are only appended.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.RLock()
        self.blobs: List[bytes] = []
        self.times: List[int] = []
        self.tkeys: List[int] = []
        self.min_time = 0
        self.max_time = 0

    def __len__(self) -> int:
        return len(self.blobs)

    def extend(self, blobs: Sequence[bytes], times: Sequence[int]) -> int:
        """Append events (encoded JSON objects and their times); returns the new event count."""
        with self.lock:
            base = len(self.blobs)
            if not self.blobs and times:
                self.min_time = self.max_time = times[0]
            self.blobs.extend(blobs)
            self.times.extend(times)
            if times:
                self.min_time = min(self.min_time, min(times))
                self.max_time = max(self.max_time, max(times))
            keys = [(t << ID_BITS) | (base + i + 1) for i, t in enumerate(times)]
            if len(keys) > 64 or not self.tkeys:
                self.tkeys.extend(keys)
                self.tkeys.sort()
            else:
                for key in keys:
                    if key > self.tkeys[-1]:
                        self.tkeys.append(key)
                    else:
                        insort(self.tkeys, key)
            return len(self.blobs)

    def events(self) -> List[Dict[str, Any]]:
        """Every event, decoded, in insertion order."""
        with self.lock:
            blobs = list(self.blobs)
        return [json.loads(blob) for blob in blobs]


class DataError(ValueError):
    """A ``--data`` file that cannot be served."""


def load_jsonl(path: str) -> Tuple[List[bytes], List[int]]:
    """Events of a JSON-lines file, re-encoded compactly, with their observation times.

    Blank lines are skipped. An event without a parsable ``observation time`` (or ``source
    time``) gets time 0, so it sorts first and any ``start`` excludes it.
    """
    blobs: List[bytes] = []
    times: List[int] = []
    try:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise DataError(f"{path}:{lineno}: not JSON: {exc}") from None
                if not isinstance(event, dict):
                    raise DataError(f"{path}:{lineno}: not a JSON object")
                when = event_time(event.get("observation time"))
                if when is None:
                    when = event_time(event.get("source time"))
                blobs.append(encode_event(event))
                times.append(when if when is not None else 0)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8: {exc}") from None
    return blobs, times


def encode_event(event: Dict[str, Any]) -> bytes:
    """The hub's compact UTF-8 JSON for one event."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


API_SHARE = "demo"
NOTIFY_SHARE = "notify"
NOTIFY_INDEXES = ("0", "1")


class Dataset:
    """The shares of the simulated hub: API share ``demo``; notification share ``notify``; and
    with ``shares=N`` the API shares ``s1`` ... ``sN``.

    ``notify/0`` and ``notify/1`` each hold every other event of the initial API share
    (odd ids in index 0, even ids in index 1), with their own insertion ids. Each ``sK`` holds
    ``events`` generated events of its own (seeded by ``seed`` and K).
    """

    def __init__(self, *, seed: int, events: int, data: Optional[str] = None,
                 event_size: Optional[int] = None, now: Optional[float] = None,
                 shares: int = 0) -> None:
        self.now = int(time.time() if now is None else now)
        self._generator = EventGenerator(seed + 7919, event_size)
        self._gen_lock = threading.Lock()
        t_from = self.now - 30 * 86400
        if data is not None:
            blobs, times = load_jsonl(data)
        else:
            initial = EventGenerator(seed, event_size)
            blobs, times = initial.batch(events, t_from, self.now)
        self.shares: Dict[str, Share] = {API_SHARE: Share(API_SHARE)}
        self.shares[API_SHARE].extend(blobs, times)
        for offset, index in enumerate(NOTIFY_INDEXES):
            share = Share(f"{NOTIFY_SHARE}/{index}")
            share.extend(blobs[offset::2], times[offset::2])
            self.shares[share.name] = share
        self.api_shares: List[str] = [API_SHARE]
        for number in range(1, shares + 1):
            name = f"s{number}"
            share = Share(name)
            share.extend(*self._generator.fork(seed * 1_000_003 + number).batch(
                events, t_from, self.now))
            self.shares[name] = share
            self.api_shares.append(name)
        self._api_names = frozenset(self.api_shares)

    def is_api_share(self, name: str) -> bool:
        """Whether ``name`` is an API share (``demo`` or ``sK``)."""
        return name in self._api_names

    def share(self, name: str) -> Share:
        """The share called ``demo``, ``notify/0``, ``notify/1`` or ``sK`` (KeyError otherwise)."""
        return self.shares[name]

    def append(self, name: str, count: int, now: Optional[float] = None) -> int:
        """Insert ``count`` new generated events, observed in the last few seconds, into a share."""
        share = self.shares[name]
        if count <= 0:
            return len(share)
        stamp = int(time.time() if now is None else now)
        with self._gen_lock:
            blobs, times = self._generator.batch(count, stamp - 5, stamp)
        return share.extend(blobs, times)
