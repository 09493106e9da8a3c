"""Thread-safe counters of what the simulator saw and did (tests and benchmarks read them)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Dict


class Stats:
    """Counters: ``requests`` per phase (post, status, results, sync, other), ``statuses`` per
    HTTP status code, ``faults`` fired per fault name, ``connections`` accepted.

    Read them directly (a Counter read is safe) or take a consistent ``snapshot()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.faults: Counter[str] = Counter()
        self.connections = 0

    def request(self, phase: str) -> None:
        with self._lock:
            self.requests[phase] += 1

    def status(self, code: int) -> None:
        with self._lock:
            self.statuses[code] += 1

    def fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] += 1

    def connection(self) -> None:
        with self._lock:
            self.connections += 1

    def snapshot(self) -> Dict[str, Any]:
        """A copy of every counter: {"requests": {...}, "statuses": {...}, "faults": {...},
        "connections": N}."""
        with self._lock:
            return {
                "requests": dict(self.requests),
                "statuses": dict(self.statuses),
                "faults": dict(self.faults),
                "connections": self.connections,
            }

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self.faults.clear()
            self.connections = 0
