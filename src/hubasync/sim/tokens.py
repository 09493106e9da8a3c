"""Continuation tokens: opaque strings naming a stable position in a share for one sort order.

A token names an event (by insertion id, and for time order also by its time) and the
direction of the query that produced it; a query given the token continues right after that
event. It is not an offset into one query's result, so it survives the query being posted
again and new events being inserted. Id 0 is the start of the order, before every event. A
token may carry a nonce (``encode_token(pos, nonce)``): tokens differing only by it name one
position.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Optional

from .query import SORT_ID, SORT_TIME

_PLAIN_RE = re.compile(r"hub1:(i|t):(f|r):(\d{1,12}):(\d{1,10})(?::n\d{1,12})?")


@dataclass(frozen=True)
class Position:
    """Right after the event ``event_id`` (observed at ``time``) in ``sort`` order."""

    sort: str
    reverse: bool
    event_id: int
    time: int = 0


def encode_token(pos: Position, nonce: Optional[int] = None) -> str:
    """The opaque text of a position (with ``nonce``: a text never issued before for it)."""
    plain = (
        f"hub1:{'i' if pos.sort == SORT_ID else 't'}:{'r' if pos.reverse else 'f'}:"
        f"{pos.time}:{pos.event_id}"
    )
    if nonce is not None:
        plain += f":n{nonce}"
    return base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")


def decode_token(text: str) -> Optional[Position]:
    """The position a token names, or None when it is not one of ours."""
    if not text or len(text) > 200 or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return None
    try:
        plain = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    m = _PLAIN_RE.fullmatch(plain)
    if m is None:
        return None
    sort = SORT_ID if m.group(1) == "i" else SORT_TIME
    return Position(sort, m.group(2) == "r", int(m.group(4)), int(m.group(3)))
