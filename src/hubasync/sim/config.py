"""Configuration of the simulator: one dataclass holding every option, with the CLI's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Tuple

MAX_SHARES = 100_000


def share_ids(shares: int) -> Tuple[str, ...]:
    """The share ids served with ``shares`` extra API shares: demo, notify, s1 ... sN."""
    return ("demo", "notify") + tuple(f"s{i}" for i in range(1, shares + 1))


@dataclass
class SimConfig:
    """Everything that shapes one simulated Arctic Hub (see docs/simulator.md)."""

    host: str = "127.0.0.1"
    port: int = 8080
    apikey: str = "demo-key"
    events: int = 10000
    seed: int = 1
    page_max: int = 100_000
    job_latency: float = 0.0
    retry_after: float = 1.0
    result_ttl: float = 300.0
    data: Optional[str] = None
    grow: float = 0.0
    relative_locations: bool = False
    faults: Sequence[str] = field(default_factory=tuple)
    fault_rate: float = 0.0
    fault_delay: float = 2.0
    event_size: Optional[int] = None
    shares: int = 0
    refused_shares: Sequence[str] = field(default_factory=tuple)
    log: bool = False
    tls_cert: Optional[str] = None  # PEM certificate chain: with tls_key, serve https
    tls_key: Optional[str] = None

    def validate(self) -> None:
        """Raise ValueError for option values the simulator cannot honour."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if self.events < 0:
            raise ValueError("events must be >= 0")
        if not 1 <= self.page_max <= 100_000:
            raise ValueError("page-max must be between 1 and 100000")
        for name, value in (
            ("job-latency", self.job_latency),
            ("retry-after", self.retry_after),
            ("grow", self.grow),
            ("fault-delay", self.fault_delay),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.result_ttl <= 0:
            raise ValueError("result-ttl must be > 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault-rate must be between 0 and 1")
        if self.event_size is not None and self.event_size < 0:
            raise ValueError("event-size must be >= 0")
        if not 0 <= self.shares <= MAX_SHARES:
            raise ValueError(f"shares must be between 0 and {MAX_SHARES}")
        known = share_ids(self.shares)
        for name in self.refused_shares:
            if name not in known:
                raise ValueError(f"refuse-key: no share {name!r} (known: demo, notify, s1..sN)")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls needs both a certificate and a key")
        if not self.apikey or any(c.isspace() for c in self.apikey):
            raise ValueError("apikey must be a non-empty string without spaces")

    def fault_specs(self) -> Tuple[str, ...]:
        """The fault specs as a tuple (accepts a single string too)."""
        if isinstance(self.faults, str):
            return (self.faults,)
        return tuple(self.faults)
