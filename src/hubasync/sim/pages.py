"""Answering a query on a share: select the page, encode (and gzip) it once, cache the bytes."""

from __future__ import annotations

import json
import threading
import zlib
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable, List, Optional, Tuple

from .dataset import ID_BITS, ID_MASK, Share, encode_event
from .query import SORT_ID, Query
from .tokens import Position, decode_token, encode_token

GZIP_LEVEL = 1


class InvalidToken(Exception):
    """The query's token is malformed, or names a position this share does not have."""

    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token

    def body(self) -> dict[str, Any]:
        """The JSON body the hub answers with (400)."""
        return {
            "title": "400 Bad Request",
            "errors": [
                {"type": "storage", "key": "token", "message": f"Invalid token: {self.token}"}
            ],
        }


@dataclass
class Result:
    """An encoded results body and the headers that go with it."""

    body: bytes
    headers: List[Tuple[str, str]] = field(default_factory=list)
    events: int = 0
    gzipped: bool = False


def _resolve_token(share: Share, query: Query) -> Optional[Position]:
    if query.token is None:
        return None
    pos = decode_token(query.token)
    if pos is None or pos.sort != query.sort or pos.reverse != query.reverse:
        raise InvalidToken(query.token)
    if pos.event_id > len(share):
        raise InvalidToken(query.token)
    if pos.event_id == 0:
        return None  # the start of the order
    if pos.event_id and pos.sort != SORT_ID and share.times[pos.event_id - 1] != pos.time:
        raise InvalidToken(query.token)
    return pos


def _candidates(share: Share, query: Query, end: Optional[int]) -> Tuple[Iterable[int], bool, int]:
    """Event ids in query order after the token, whether each still needs a time check, and an
    upper bound of how many there are."""
    n = len(share)
    pos = _resolve_token(share, query)
    if query.sort == SORT_ID:
        lo, hi = 1, n + 1
        if pos is not None:
            if query.reverse:
                hi = min(hi, pos.event_id)
            else:
                lo = max(lo, pos.event_id + 1)
        check = (query.start is not None and query.start > share.min_time) or (
            end is not None and end <= share.max_time
        )
        ids: Iterable[int] = range(hi - 1, lo - 1, -1) if query.reverse else range(lo, hi)
        return ids, check, max(0, hi - lo)
    keys = share.tkeys
    lo = 0 if query.start is None else bisect_left(keys, query.start << ID_BITS)
    hi = n if end is None else bisect_left(keys, end << ID_BITS)
    if pos is not None:
        mark = (pos.time << ID_BITS) | pos.event_id
        if query.reverse:
            hi = min(hi, bisect_left(keys, mark))
        else:
            lo = max(lo, bisect_right(keys, mark))
    hi = max(hi, lo)
    window = keys[lo:hi]
    if query.reverse:
        window.reverse()
    return (k & ID_MASK for k in window), False, hi - lo


def _count(share: Share, query: Query, end: Optional[int]) -> int:
    ids, check_time, bound = _candidates(share, query, end)
    if query.filter is None and not check_time:
        return bound
    return len(_matches(share, query, end, None)[0])


def _matches(share: Share, query: Query, end: Optional[int], limit: Optional[int]
             ) -> Tuple[List[int], bool]:
    """Ids of up to ``limit`` matching events in order, and whether more match after them."""
    ids, check_time, bound = _candidates(share, query, end)
    flt = query.filter
    if flt is None and not check_time:
        if limit is None or bound <= limit:
            return list(ids), False
        picked: List[int] = []
        for event_id in ids:
            if len(picked) == limit:
                return picked, True
            picked.append(event_id)
        return picked, False
    times = share.times
    blobs = share.blobs
    start = query.start if query.start is not None else -(1 << 62)
    stop = end if end is not None else 1 << 62
    needles = flt.needles if flt is not None else frozenset()
    out: List[int] = []
    for event_id in ids:
        if check_time and not start <= times[event_id - 1] < stop:
            continue
        if flt is not None:
            blob = blobs[event_id - 1]
            if needles and not all(n in blob for n in needles):
                continue
            if not flt(json.loads(blob)):
                continue
        if limit is not None and len(out) == limit:
            return out, True
        out.append(event_id)
    return out, False


def effective_end(share: Share, query: Query, now: float) -> Optional[int]:
    """The query's end; without one, "now" when the share holds events from the future."""
    if query.end is not None:
        return query.end
    if share.max_time > now:
        return int(now) + 1
    return None


def gzip_bytes(data: bytes) -> bytes:
    """A gzip member of ``data`` (fast level, as a busy server would use)."""
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


class PageCache:
    """LRU of encoded results, bounded by total bytes, shared by all requests."""

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Result] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Optional[Result]:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return found

    def put(self, key: Hashable, result: Result) -> None:
        if len(result.body) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old.body)
            self._entries[key] = result
            self._size += len(result.body)
            while self._size > self.max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._size -= len(dropped.body)


def answer(share: Share, query: Query, *, page_max: int, now: float, gzip: bool,
           cache: Optional[PageCache] = None) -> Result:
    """The results of ``query`` on ``share``: events (with token headers) or a count.

    Raises InvalidToken. Results are cached by (share, size, query, encoding).
    """
    with share.lock:
        end = effective_end(share, query, now)
        limit = None if query.count else min(query.limit or page_max, page_max)
        key = (share.name, len(share), query.key(), end, limit, gzip)
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        if query.count:
            result = Result(json.dumps({"count": _count(share, query, end)}).encode())
        else:
            ids, more = _matches(share, query, end, limit)
            result = _encode_page(share, query, ids, more)
    if gzip:
        result.body = gzip_bytes(result.body)
        result.gzipped = True
    if cache is not None:
        cache.put(key, result)
    return result


def _position(share: Share, query: Query, event_id: int) -> str:
    return encode_token(
        Position(query.sort, query.reverse, event_id, share.times[event_id - 1])
    )


def _encode_page(share: Share, query: Query, ids: List[int], more: bool) -> Result:
    blobs = share.blobs
    if query.projection is None:
        chosen = [blobs[i - 1] for i in ids]
    else:
        keep = set(query.projection)
        chosen = []
        for i in ids:
            event = json.loads(blobs[i - 1])
            chosen.append(encode_event({k: v for k, v in event.items() if k in keep}))
    headers: List[Tuple[str, str]] = []
    if ids:
        headers.append(("X-First-Token", _position(share, query, ids[0])))
        headers.append(("X-Last-Token", _position(share, query, ids[-1])))
    if more:
        headers.append(("X-Next-Token", _position(share, query, ids[-1])))
    newest = len(share)
    headers.append((
        "X-Last-Inserted-Token",
        encode_token(Position(SORT_ID, False, newest, share.times[newest - 1] if newest else 0)),
    ))
    return Result(b"[" + b",".join(chosen) + b"]", headers, len(ids))
