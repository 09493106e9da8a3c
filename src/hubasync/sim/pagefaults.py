"""Hostile pages: results whose tokens lead nowhere (same, cycling, endless) or that hold more
events than asked for. The hub's memory of which token led to which (``TokenTrail``) lives here."""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import List, Optional, Tuple

from .dataset import Share
from .faults import FRESH_EMPTY, FRESH_REPEAT, MORE_EVENTS, SAME_TOKEN, TOKEN_CYCLE, Fault
from .pages import PageCache, Result, answer, gzip_bytes
from .query import Query
from .tokens import Position, decode_token, encode_token

_FIRST_PAGE = ""  # the parent of a token issued for a query posted without one


class TokenTrail:
    """Which token each issued ``X-Next-Token`` answered (bounded), and fresh nonces."""

    def __init__(self, keep: int = 100_000) -> None:
        self.keep = keep
        self._parents: OrderedDict[Tuple[str, str], str] = OrderedDict()
        self._nonce = 0
        self._lock = threading.Lock()

    def record(self, share_id: str, asked: Optional[str], result: Result) -> None:
        """Remember that the page asked with ``asked`` continued with its X-Next-Token."""
        issued = _header(result, "X-Next-Token")
        if issued is None:
            return
        with self._lock:
            self._parents[(share_id, issued)] = asked or _FIRST_PAGE
            self._parents.move_to_end((share_id, issued))
            while len(self._parents) > self.keep:
                self._parents.popitem(last=False)

    def previous(self, share_id: str, token: Optional[str]) -> Optional[str]:
        """The token that the page asked with ``token`` was itself reached with; None when
        ``token`` came from a first page or is unknown."""
        if token is None:
            return None
        with self._lock:
            parent = self._parents.get((share_id, token))
        return parent or None

    def nonce(self) -> int:
        with self._lock:
            self._nonce += 1
            return self._nonce


def start_token(query: Query) -> str:
    """A token naming the start of the query's order: asking with it gives the first page."""
    return encode_token(Position(query.sort, query.reverse, 0, 0))


def _header(result: Result, name: str) -> Optional[str]:
    for key, value in result.headers:
        if key == name:
            return value
    return None


def _with_next(result: Result, token: str, body: Optional[bytes] = None,
               events: Optional[int] = None) -> Result:
    headers: List[Tuple[str, str]] = [(k, v) for k, v in result.headers if k != "X-Next-Token"]
    headers.append(("X-Next-Token", token))
    return Result(result.body if body is None else body, headers,
                  result.events if events is None else events, result.gzipped)


def _fresh_same_place(query: Query, trail: TokenTrail) -> str:
    pos = decode_token(query.token) if query.token else None
    if pos is None:
        pos = Position(query.sort, query.reverse, 0, 0)
    return encode_token(pos, trail.nonce())


def reshape(fault: Fault, result: Result, *, share: Share, share_id: str, query: Query,
            trail: TokenTrail, page_max: int, now: float, gzip: bool,
            cache: Optional[PageCache]) -> Result:
    """The page ``result`` as the token fault ``fault`` turns it (a new Result; the cached one
    stays untouched)."""
    mode = fault.tokens
    if mode == SAME_TOKEN:
        return _with_next(result, query.token or start_token(query))
    if mode == TOKEN_CYCLE:
        back = trail.previous(share_id, query.token)
        return _with_next(result, back) if back else result
    if mode == FRESH_EMPTY:
        empty = [(k, v) for k, v in result.headers if k not in ("X-First-Token", "X-Last-Token")]
        body = gzip_bytes(b"[]") if gzip else b"[]"
        return _with_next(Result(body, empty, 0, gzip), _fresh_same_place(query, trail))
    if mode == FRESH_REPEAT:
        return _with_next(result, _fresh_same_place(query, trail))
    if mode == MORE_EVENTS:
        more = min(query.limit or page_max, page_max) + 1
        return answer(share, dataclasses.replace(query, limit=more), page_max=more, now=now,
                      gzip=gzip, cache=cache)
    raise ValueError(f"not a token fault: {fault.name}")
