"""Syslog over TCP or TLS (``syslog+tcp://``, ``syslog+tls://``): RFC 5424 messages with
octet-counting framing (RFC 6587 §3.4.1; RFC 5425 for TLS).

Plain syslog has no acknowledgement. The honest substitute: each batch goes over a connection
of its own, and counts as delivered only when all its bytes were sent and the connection was
shut down cleanly: over TLS, close_notify sent and the receiver's close_notify received; over
TCP, our side shut down (``SHUT_WR``) and the receiver's end of stream read, within the
timeout. That proves the receiver read every byte up to our end; it does not prove it stored
them (a receiver killed after reading loses what it held in memory), nor that it parsed each
message. docs/delivery.md says more.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import List, Optional, Sequence

from ..errors import DeliveryError
from .addresses import FACILITIES, SEVERITIES, DestinationConfig
from .connection import ClosingTlsStream, OpenSockets, Stream, failure, stop_error
from .records import Outcome, Outgoing, Rejection
from .syslog_format import SyslogFormat
from .tls import client_context

_DRAIN_LIMIT = 1 << 20  # a syslog receiver sends nothing; read at most this much before EOF


def syslog_format(config: DestinationConfig, share: str) -> SyslogFormat:
    """The message format a syslog or RELP destination's options ask for."""
    options = config.options
    return SyslogFormat(facility=FACILITIES[options["facility"]],
                        severity=SEVERITIES[options["severity"]], msgid=share,
                        sd_id=options["sd_id"], hostname=options["hostname"] or "")


def tls_context(config: DestinationConfig) -> Optional[ssl.SSLContext]:
    if not config.tls:
        return None
    options = config.options
    return client_context(options["cacert"], options["cert"], options["key"],
                          config.secret("key_passphrase"))


def too_large(messages: Sequence[bytes], limit: int) -> List[Rejection]:
    """The messages longer than the destination takes: rejected for good, never sent."""
    if not messages or max(map(len, messages)) <= limit:
        return []
    return [Rejection(i, f"the syslog message of {len(m)} bytes exceeds max_message_size "
                         f"({limit})") for i, m in enumerate(messages) if len(m) > limit]


class SyslogDestination:
    """Delivers batches to a syslog receiver, one connection per batch (see the module)."""

    def __init__(self, config: DestinationConfig, share: str) -> None:
        self.name = config.name
        self._config = config
        self._format = syslog_format(config, share)
        self._context = tls_context(config)
        self._timeout = float(config.options["timeout"])
        self._limit = int(config.options["max_message_size"])
        self._sockets = OpenSockets()

    def __repr__(self) -> str:
        return f"SyslogDestination({self.name!r})"

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        messages = self._format.messages(batch, time.time())
        rejected = too_large(messages, self._limit)
        if rejected:
            skip = {r.position for r in rejected}
            messages = [m for i, m in enumerate(messages) if i not in skip]
        if not messages:
            return Outcome(len(batch), rejected)
        nothing = Outcome(0, rejected)
        data = self._format.octet_counted(messages)
        host, port = self._config.host, self._config.port
        if self._context is not None:
            try:
                self._deliver_tls(data, host, port, deadline, nothing)
            except DeliveryError as error:
                if (error.transient and self._config.options["cert"] is None
                        and not self._sockets.aborted):
                    raise DeliveryError(f"{error} (over TLS, the receiver may want a client "
                                        "certificate it trusts: cert, key)", transient=True,
                                        outcome=nothing) from None
                raise
            return Outcome(len(batch), rejected)
        stream = Stream.connect(host, port, self.name, self._timeout, deadline, None,
                                self._sockets)
        try:
            stream.send(data, deadline, lambda: nothing)
            self._shut_down(stream, deadline, nothing)
        finally:
            stream.close()
        return Outcome(len(batch), rejected)

    def _deliver_tls(self, data: bytes, host: str, port: int, deadline: float,
                     nothing: Outcome) -> None:
        assert self._context is not None
        tls = ClosingTlsStream.connect(host, port, self.name, self._timeout, deadline,
                                       self._context, self._sockets)
        try:
            tls.send(data, deadline, lambda: nothing)
            tls.close_cleanly(deadline, lambda: nothing)
        finally:
            tls.close()

    def _shut_down(self, stream: Stream, deadline: float, nothing: Outcome) -> None:
        """End the TCP connection cleanly (our FIN, then the receiver's), or raise: only a
        clean end counts as delivered."""
        sock = stream.sock
        try:
            sock.settimeout(max(0.001, min(self._timeout, deadline - time.monotonic())))
            sock.shutdown(socket.SHUT_WR)
            drained = 0
            while True:
                data = sock.recv(65536)
                if not data:
                    if stream.aborted():  # the end is our own shutdown, not the receiver's
                        raise stop_error(self.name, nothing)
                    return
                drained += len(data)
                if drained > _DRAIN_LIMIT:
                    raise DeliveryError(f"{self.name}: the receiver sends data instead of "
                                        "closing", transient=True, outcome=nothing)
        except (OSError, ValueError) as exc:
            raise failure(self.name, "the receiver did not close the connection cleanly", exc,
                          nothing) from None

    def abort(self) -> None:
        self._sockets.abort()

    def close(self) -> None:
        """Nothing stays open between batches."""
