"""What every destination takes and gives back: the events of a batch, the outcome of delivering
it, and the interface the run loop drives every destination through.

A destination is synchronous and batch-based: ``deliver(batch, deadline)`` blocks until each
event of the batch is acknowledged by the receiver or rejected for good, or until a failure,
which it raises as :class:`hubasync.errors.DeliveryError` carrying the :class:`Outcome` reached
so far. The caller keeps the acknowledged prefix and delivers the rest again later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, NamedTuple, Protocol, Sequence


class Outgoing(NamedTuple):
    """One event to deliver (a named tuple: a batch makes thousands, twice as fast as a
    frozen dataclass)."""

    seq: int  # its sequence number in the share's local record (monotonic)
    key: str  # its stable key: duplicates downstream carry the same one
    event: bytes  # the event's JSON, one line, no trailing newline


class Rejection(NamedTuple):
    """An event the receiver refused for good (sending it again would be refused again)."""

    position: int  # its index in the batch
    reason: str  # one line, naming no secret


@dataclass
class Outcome:
    """How far a batch went.

    ``acknowledged`` events from the start of the batch are done, in order: each was either
    acknowledged by the receiver or is listed in ``rejected`` (refused for good: the caller
    dead-letters it). Events past the prefix are not known to be delivered, even when the
    receiver acknowledged some of them: the caller sends them again (duplicates carry the same
    key).
    """

    acknowledged: int = 0
    rejected: List[Rejection] = field(default_factory=list)

    def rejected_within_prefix(self) -> List[Rejection]:
        """The rejections the caller dead-letters now: those inside the acknowledged prefix."""
        return [r for r in self.rejected if r.position < self.acknowledged]


class Destination(Protocol):
    """What the run loop needs of a destination (syslog, RELP, Splunk HEC, Kafka)."""

    name: str  # the destination's address as the user wrote it, without secrets

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        """Deliver ``batch`` by ``deadline`` (a ``time.monotonic()`` value).

        Returns when every event is acknowledged or rejected for good (``acknowledged ==
        len(batch)``); raises :class:`hubasync.errors.DeliveryError` with the outcome reached so
        far otherwise.
        """
        ...

    def close(self) -> None:
        """Close connections cleanly; the destination may be used again (it reconnects)."""
        ...

    def abort(self) -> None:
        """Called from another thread when the run stops: a ``deliver`` blocked on the receiver
        fails at once (transient: what was not acknowledged is sent again by the next run), and
        every later one too. Sets a flag (and shuts its sockets down); closes nothing."""
        ...


def prefix_of(status: bytearray) -> int:
    """The acknowledged prefix of a batch whose events' states are in ``status``: the index of
    the first event still pending (state 0), or the batch's length."""
    first_pending = status.find(0)
    return len(status) if first_pending < 0 else first_pending


PENDING, ACKNOWLEDGED, REJECTED = 0, 1, 2
