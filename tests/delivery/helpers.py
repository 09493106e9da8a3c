"""Helpers of the delivery tests: batches of events, destinations, deadlines."""

from __future__ import annotations

import json
import random
import time
from typing import Any, Dict, List, Optional

from hubasync.delivery import Destination, Outgoing, open_destination, parse_destination

PATIENCE = 60.0
OPENED: List[Destination] = []  # closed after each test (conftest.py)


def events(count: int, start: int = 0, size: int = 0, seed: int = 1) -> List[Outgoing]:
    """``count`` events with unique keys; some text is non-ASCII or holds ``"``, ``\\``, ``]``;
    ``size`` pads each to about that many bytes."""
    rng = random.Random(seed)
    words = ["Müller", "ПАО «Ростелеком»", 'quote " and \\ and ]', "plain", "tab\tless"]
    batch = []
    for n in range(start, start + count):
        body: Dict[str, Any] = {"n": n, "feed": rng.choice(words), "ip": f"192.0.2.{n % 250}"}
        if size:
            body["description"] = "x" * max(0, size - len(json.dumps(body)) - 20)
        key = f"k-{n}" if n % 7 else f'k"{n}]\\'
        batch.append(Outgoing(n, key, json.dumps(body, ensure_ascii=False).encode()))
    return batch


def destination(url: str, options: Optional[Dict[str, Any]] = None,
                share: str = "demo") -> Destination:
    opened = open_destination(parse_destination(url, options or {}, "--to"), share)
    OPENED.append(opened)
    return opened


def close_opened() -> None:
    while OPENED:
        OPENED.pop().close()


def deadline(seconds: float = PATIENCE) -> float:
    return time.monotonic() + seconds
