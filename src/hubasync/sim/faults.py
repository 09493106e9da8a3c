"""Faults on demand: which request misbehaves, and how (the catalogue, counted and random modes)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Fault:
    """A way to misbehave, in one phase: ``post``, ``status``, ``results`` or ``any``."""

    name: str
    phase: str
    help: str


_CATALOGUE = (
    ("post-503", "post", "503 with Retry-After instead of accepting the query"),
    ("post-503-date", "post", "503 with Retry-After as an HTTP date (a second ahead)"),
    ("post-429", "post", "429 rate limited, with Retry-After"),
    ("post-500", "post", "500 server error"),
    ("post-502", "post", "502 from a proxy (HTML body)"),
    ("post-drop", "post", "closes the connection without answering"),
    ("post-reset", "post", "resets the connection (RST) without answering"),
    ("post-slow", "post", "waits fault_delay seconds before answering"),
    ("status-502", "status", "502 from a proxy (HTML body)"),
    ("status-503", "status", "503 with Retry-After"),
    ("status-504", "status", "504 gateway timeout from a proxy (HTML body)"),
    ("status-500", "status", "500 server error"),
    ("status-429", "status", "429 rate limited, with Retry-After"),
    ("status-404", "status", "404: the job vanished (it is forgotten)"),
    ("status-410", "status", "410 without X-STATUS: the job went stale (it stays stale)"),
    ("status-expired", "status", "410 with X-STATUS: Job expired (the job stays expired)"),
    ("status-no-retry-after", "status", "202 'not done yet' without Retry-After, even if done"),
    ("status-retry-after-date", "status", "202 'not done yet' with Retry-After as an HTTP date"),
    ("status-drop", "status", "closes the connection without answering"),
    ("status-reset", "status", "resets the connection (RST) without answering"),
    ("status-slow", "status", "waits fault_delay seconds before answering"),
    ("results-502", "results", "502 from a proxy (HTML body); the results stay fetchable"),
    ("results-503", "results", "503 with Retry-After; the results stay fetchable"),
    ("results-504", "results", "504 from a proxy (HTML body); the results stay fetchable"),
    ("results-500", "results", "500 server error; the results stay fetchable"),
    ("results-429", "results", "429 with Retry-After; the results stay fetchable"),
    ("results-404", "results", "404: the job vanished (it is forgotten)"),
    ("results-410", "results", "410: already fetched (the job is consumed)"),
    ("results-expired", "results", "410 with X-STATUS: Job expired (the job stays expired)"),
    ("results-truncated", "results", "full Content-Length, half the body, then close (FIN)"),
    ("results-reset", "results", "half the body, then a connection reset (RST)"),
    ("results-stall", "results", "half the body, then silence for fault_delay s, then close"),
    ("results-bad-gzip", "results", "the gzip stream is corrupted midway (gzip requests only)"),
    ("results-bad-json", "results", "valid gzip (if asked) of invalid JSON: the array cut midway"),
    ("results-empty", "results", "200 with an empty body"),
    ("results-slow", "results", "waits fault_delay seconds before the first byte"),
    ("results-trickle", "results", "the body in tiny pieces, spread over fault_delay seconds"),
    ("results-chunked", "results", "Transfer-Encoding: chunked instead of Content-Length"),
    ("results-no-gzip", "results", "identity despite Accept-Encoding: gzip, like some proxies"),
    ("results-drop", "results", "closes the connection without answering"),
    ("keepalive-drop", "any", "answers, then closes the kept-alive connection silently"),
)

FAULTS: Dict[str, Fault] = {name: Fault(name, phase, text) for name, phase, text in _CATALOGUE}

@dataclass
class _Left:
    name: str
    left: int


def parse_spec(spec: str) -> Tuple[str, int]:
    """``NAME[:COUNT]`` as (name, count); COUNT defaults to 1. Raises ValueError."""
    name, sep, count_text = spec.strip().partition(":")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
    if not sep:
        return name, 1
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(f"bad fault count in {spec!r}") from None
    if count < 0:
        raise ValueError(f"bad fault count in {spec!r}")
    return name, count


class FaultPlan:
    """Decides, for each request that would succeed, whether (and how) it misbehaves.

    Counted mode: each ``NAME:COUNT`` spoils the first COUNT chances of its phase; several faults
    of a phase take their turns in the order given. Random mode (``rate > 0``): every chance
    misbehaves with probability ``rate``, with a fault drawn from the named ones (all when none
    are named), from a generator seeded with ``seed``.
    """

    def __init__(self, specs: Sequence[str] = (), rate: float = 0.0, seed: int = 0) -> None:
        self._counted: List[_Left] = [_Left(*parse_spec(spec)) for spec in specs]
        self.rate = rate
        named = [c.name for c in self._counted]
        self._pool = named or list(FAULTS)
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def draw(self, phase: str, usable: Callable[[str], bool] = lambda name: True
             ) -> Optional[str]:
        """The fault for this chance of ``phase``, or None to behave.

        ``any`` faults are drawn separately, after each normal answer of any phase.
        """
        with self._lock:
            if self.rate > 0:
                choices = [n for n in self._pool if FAULTS[n].phase == phase and usable(n)]
                if not choices or self._rng.random() >= self.rate:
                    return None
                return self._rng.choice(choices)
            for entry in self._counted:
                if entry.left > 0 and FAULTS[entry.name].phase == phase and usable(entry.name):
                    entry.left -= 1
                    return entry.name
            return None

    def pending(self) -> Dict[str, int]:
        """Counted faults not yet fired."""
        with self._lock:
            out: Dict[str, int] = {}
            for entry in self._counted:
                out[entry.name] = out.get(entry.name, 0) + entry.left
            return out
