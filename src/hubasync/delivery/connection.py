"""A byte stream to a receiver over TCP or TLS, for syslog and RELP: connect, send, receive
and shut down within a deadline, every failure turned into a one-line ``DeliveryError``.

Refused, reset, closed and timed-out connections are transient; a TLS refusal (an untrusted
certificate, a wrong name, a client certificate refused or missing) is not.
"""

from __future__ import annotations

import errno
import re
import select
import socket
import ssl
import threading
import time
from typing import Callable, Optional, Set

from ..errors import DeliveryError
from .records import Outcome
from .tls import handshake_problem

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux


def _remaining(deadline: float, timeout: float) -> float:
    return max(0.001, min(timeout, deadline - time.monotonic()))


def stop_error(name: str, outcome: Optional[Outcome] = None) -> DeliveryError:
    """The error of a destination aborted by a stop (transient: the next run sends again)."""
    return DeliveryError(f"{name}: stopped", transient=True, outcome=outcome or Outcome())


class OpenSockets:
    """The sockets a destination has open, so that a stop can break its blocking calls from
    another thread (:meth:`abort`: each is shut down, which wakes a ``recv`` or ``send`` with an
    end or an error; closing stays the owner's). Once aborted, a socket added is shut down at
    once. Who may touch what: the delivering thread adds and discards, any thread aborts; the
    lock guards the set; the flag is an event, so that a wait can end with it (:meth:`sleep`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: Set[socket.socket] = set()
        self._aborted = threading.Event()

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if aborted meanwhile."""
        self._aborted.wait(seconds)

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            aborted = self._aborted.is_set()
        if aborted:
            _shut(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def abort(self) -> None:
        with self._lock:
            self._aborted.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown: ssl.SSLSocket.shutdown would first drop its TLS layer, under
    # the feet of the thread using it
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # not connected, or already shut
        pass


class Stream:
    """One connection. ``name`` prefixes every message (``relp+tls://host:2514``)."""

    def __init__(self, sock: socket.socket, name: str, timeout: float,
                 sockets: Optional[OpenSockets] = None) -> None:
        self.sock = sock
        self.name = name
        self.timeout = timeout
        self.tls = isinstance(sock, ssl.SSLSocket)
        self._sockets = sockets
        if sockets is not None:
            sockets.add(sock)

    @classmethod
    def connect(cls, host: str, port: int, name: str, timeout: float, deadline: float,
                context: Optional[ssl.SSLContext],
                sockets: Optional[OpenSockets] = None) -> Stream:
        if sockets is not None and sockets.aborted:
            raise stop_error(name)
        if time.monotonic() >= deadline:
            raise DeliveryError(f"{name}: the deadline passed before connecting", transient=True,
                                outcome=Outcome())
        try:
            sock = socket.create_connection((host, port), timeout=_remaining(deadline, timeout))
        except OSError as exc:
            raise failure(name, "cannot connect", exc, Outcome()) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host,
                                           do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            sock.close()
            raise failure(name, "TLS handshake failed", exc, Outcome()) from None
        stream = cls(sock, name, timeout, sockets)  # registered: a stop breaks the handshake
        if context is not None:
            try:
                sock.settimeout(_remaining(deadline, timeout))
                sock.do_handshake()  # type: ignore[attr-defined]
            except (OSError, ValueError) as exc:
                stream.close()
                if stream.aborted():
                    raise stop_error(name) from None
                raise failure(name, "TLS handshake failed", exc, Outcome()) from None
        return stream

    def send(self, data: bytes, deadline: float, outcome: Callable[[], Outcome]) -> None:
        """Send all of ``data``; on failure raise with ``outcome()`` (the batch so far)."""
        try:
            self.sock.settimeout(_remaining(deadline, self.timeout))
            self.sock.sendall(data)
        except (OSError, ValueError) as exc:
            raise failure(self.name, "sending failed", exc, outcome()) from None

    def receive(self, deadline: float, outcome: Callable[[], Outcome],
                wait: bool = True) -> Optional[bytes]:
        """The next bytes (``b""`` at the receiver's end of stream); None when ``wait`` is
        false and nothing is there yet."""
        try:
            if not wait and not self.readable():
                return None
            self.sock.settimeout(_remaining(deadline, self.timeout))
            if _QUICKACK is not None:
                # Acknowledge the receiver's segments at once: a receiver whose small answers
                # wait for our ACK (Nagle) would otherwise stall 40 ms on our delayed ACK.
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            data = self.sock.recv(262144)
        except ssl.SSLZeroReturnError:
            data = b""
        except (OSError, ValueError) as exc:
            raise failure(self.name, "receiving failed", exc, outcome()) from None
        if not data and self.aborted():
            raise stop_error(self.name, outcome())
        return data

    def aborted(self) -> bool:
        """Whether a stop shut this connection down: an end of stream is then ours, not the
        receiver's."""
        return self._sockets is not None and self._sockets.aborted

    def readable(self) -> bool:
        if self.tls and self.sock.pending():  # type: ignore[attr-defined]
            return True
        ready, _, _ = select.select([self.sock], [], [], 0)
        return bool(ready)

    def close(self) -> None:
        if self._sockets is not None:
            self._sockets.discard(self.sock)
        try:
            self.sock.close()
        except OSError:
            pass


def failure(name: str, doing: str, exc: BaseException, outcome: Outcome) -> DeliveryError:
    """A ``DeliveryError`` for a socket or TLS failure: one line, transient unless the
    receiver refused us for good."""
    problem = handshake_problem(exc)
    if problem is not None:
        return DeliveryError(f"{name}: {problem}", transient=False, outcome=outcome)
    if isinstance(exc, socket.timeout):
        text = "timed out"
    elif isinstance(exc, socket.gaierror):
        text = f"cannot resolve the host ({exc.strerror or exc})"
    elif isinstance(exc, ssl.SSLError):
        detail = exc.reason or re.sub(r"\s*\(_?ssl\.c:\d+\)", "", str(exc)) or type(exc).__name__
        text = f"TLS error ({detail.lower().replace('_', ' ')})"
    elif isinstance(exc, OSError) and exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET,
                                                   errno.EPIPE):
        text = {errno.ECONNREFUSED: "connection refused", errno.ECONNRESET: "connection reset",
                errno.EPIPE: "connection closed by the receiver"}[exc.errno]
    elif isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
    else:
        text = str(exc) or type(exc).__name__
    return DeliveryError(f"{name}: {doing}: {text}", transient=True, outcome=outcome)


class ClosingTlsStream:
    """TLS over a plain socket through memory BIOs, for syslog: so that a clean close can be
    proven. ``ssl.SSLSocket.unwrap`` may return before the receiver's close_notify arrived
    (it tries ``SSL_shutdown`` only twice); here the close waits until reading gives the
    receiver's close_notify, and anything else (an alert, a reset, an end without close_notify)
    is a failure."""

    def __init__(self, plain: Stream, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO, name: str, timeout: float) -> None:
        self.plain = plain
        self.sock = plain.sock
        self.tls = tls
        self.incoming = incoming
        self.outgoing = outgoing
        self.name = name
        self.timeout = timeout

    @classmethod
    def connect(cls, host: str, port: int, name: str, timeout: float, deadline: float,
                context: ssl.SSLContext,
                sockets: Optional[OpenSockets] = None) -> ClosingTlsStream:
        plain = Stream.connect(host, port, name, timeout, deadline, None, sockets)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
        stream = cls(plain, tls, incoming, outgoing, name, timeout)
        try:
            stream._until_done(tls.do_handshake, deadline)
        except (OSError, ValueError) as exc:
            stream.close()
            raise failure(name, "TLS handshake failed", exc, Outcome()) from None
        except BaseException:
            stream.close()
            raise
        return stream

    def _flush(self, deadline: float) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.settimeout(_remaining(deadline, self.timeout))
            self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        self.sock.settimeout(_remaining(deadline, self.timeout))
        data = self.sock.recv(65536)
        if data:
            self.incoming.write(data)
        elif self.plain.aborted():
            raise stop_error(self.name)
        else:
            self.incoming.write_eof()

    def _until_done(self, step: Callable[[], object], deadline: float) -> object:
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                self._flush(deadline)
                self._fill(deadline)
                continue
            self._flush(deadline)
            return result

    def send(self, data: bytes, deadline: float, outcome: Callable[[], Outcome]) -> None:
        view = memoryview(data)
        try:
            written = 0
            while written < len(data):
                piece = view[written:written + (1 << 20)]
                written += self._write(piece, deadline)
        except (OSError, ValueError) as exc:
            raise self._alert_or(failure(self.name, "sending failed", exc, outcome())) from None

    def _alert_or(self, error: DeliveryError) -> DeliveryError:
        """The receiver's TLS alert, when one arrived before the failure (a TLS 1.3 receiver
        refuses a client certificate after the handshake, then resets); else ``error``."""
        try:
            self.sock.settimeout(0.2)
            data = self.sock.recv(65536)
            if data:
                self.incoming.write(data)
            self.tls.read(1)
        except ssl.SSLError as exc:
            problem = handshake_problem(exc)
            if problem is not None:
                return DeliveryError(f"{self.name}: {problem}", transient=False,
                                     outcome=error.outcome)
        except (OSError, ValueError):
            pass
        return error

    def _write(self, piece: memoryview, deadline: float) -> int:
        while True:
            try:
                count = self.tls.write(piece)
            except ssl.SSLWantReadError:
                self._flush(deadline)
                self._fill(deadline)
                continue
            self._flush(deadline)
            return count

    def _read(self, deadline: float) -> bytes:
        while True:
            try:
                data = self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._flush(deadline)
                self._fill(deadline)
                continue
            return data

    def close_cleanly(self, deadline: float, outcome: Callable[[], Outcome]) -> None:
        """Send close_notify, then read until the receiver's close_notify; raise otherwise."""
        try:
            self._until_done(self.tls.unwrap, deadline)
            drained = 0
            while True:
                try:
                    drained += len(self._read(deadline))
                except ssl.SSLZeroReturnError:
                    return  # the receiver's close_notify
                if drained > 1 << 20:
                    raise DeliveryError(f"{self.name}: the receiver sends data instead of "
                                        "closing", transient=True, outcome=outcome())
        except ssl.SSLZeroReturnError:
            return
        except (OSError, ValueError) as exc:
            raise failure(self.name, "the receiver did not close the TLS session cleanly", exc,
                          outcome()) from None

    def close(self) -> None:
        self.plain.close()
