"""HTTP over ``http.client``: kept-alive connections to the share's one origin.

The transport knows nothing of the async API. It sends requests to URLs of the share's own
origin only (anything else is refused, so the API key never leaves it), keeps connections
alive between requests, lets a request be sent before its answer is read (so the next page's
query can travel while the current page's body streams on another connection), and turns
every socket-level failure into :class:`hubasync.errors.NetworkError`.

A request sent on a kept-alive connection that the hub closed while it was idle is sent once
more on a new connection, at no cost to the retry budget: the hub did not fail, the connection
had simply been let go (HTTP/1.1 allows either side to close an idle connection).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

from .errors import BadBody, CertificateError, NetworkError, ProtocolError
from .urls import origin_of, redact

CHUNK_SIZE = 128 * 1024
SMALL_BODY_LIMIT = 1024 * 1024

Trace = Callable[[str], None]

# What a kept-alive connection that the server closed while idle raises on reuse.
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


def describe_os_error(error: BaseException) -> str:
    """A short human reason for a socket-level failure."""
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed by the hub without an answer"
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError)):
        return "connection reset"
    if isinstance(error, BrokenPipeError):
        return "connection closed by the hub"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS error ({error.reason or error})"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve host ({error.strerror})"
    if isinstance(error, http.client.IncompleteRead):
        return "body cut short"
    if isinstance(error, http.client.HTTPException):
        return f"malformed HTTP answer ({type(error).__name__})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _failure(method: str, error: BaseException) -> Exception:
    """The error for a request that failed below HTTP; an untrusted certificate is final."""
    message = f"{method} failed: {describe_os_error(error)}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return CertificateError(message + " (--cacert FILE adds a private CA)")
    return NetworkError(message)


class Response:
    """An answer whose status and headers have arrived; its body is read on demand.

    The connection goes back to the pool once the body has been read to its end, and is
    closed if the body is abandoned or fails.
    """

    def __init__(self, transport: Transport, conn: http.client.HTTPConnection,
                 raw: http.client.HTTPResponse, url: str) -> None:
        self._transport = transport
        self._conn: Optional[http.client.HTTPConnection] = conn
        self._raw = raw
        self.url = url
        self.status = raw.status
        self.headers = raw.headers

    def header(self, name: str) -> Optional[str]:
        """The value of header ``name`` (case-insensitive), or None."""
        value = self.headers.get(name)
        return None if value is None else str(value).strip()

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The body's bytes as they arrive (still content-encoded).

        Raises :class:`BadBody` if the body ends before its declared length and
        :class:`NetworkError` if the connection fails on the way.
        """
        raw = self._raw
        try:
            while True:
                data = raw.read1(size)
                if not data:
                    break
                yield data
            if raw.length:
                raise BadBody(f"body cut short: {raw.length} bytes missing")
            raw.read()  # marks the response complete so the connection can be reused
        except (OSError, http.client.HTTPException) as error:
            self.abandon()
            if isinstance(error, http.client.IncompleteRead):
                raise BadBody("body cut short") from error
            raise NetworkError(f"reading the body failed: {describe_os_error(error)}") from error
        except BaseException:
            self.abandon()
            raise
        self._release()

    def read_small(self, limit: int = SMALL_BODY_LIMIT) -> bytes:
        """The whole body of a small answer (an error, a count), at most ``limit`` bytes."""
        parts: list[bytes] = []
        size = 0
        for part in self.chunks():
            size += len(part)
            if size > limit:
                self.abandon()
                raise BadBody(f"answer larger than {limit} bytes")
            parts.append(part)
        return b"".join(parts)

    def abandon(self) -> None:
        """Give up on the body: the connection cannot be reused."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _release(self) -> None:
        if self._conn is not None:
            if self._raw.will_close:
                self._conn.close()
            else:
                self._transport._idle.append(self._conn)
            self._conn = None


class Exchange:
    """A request that has been sent and whose answer has not been read yet."""

    def __init__(self, transport: Transport, conn: http.client.HTTPConnection, method: str,
                 url: str, reused: bool) -> None:
        self._transport = transport
        self._conn: Optional[http.client.HTTPConnection] = conn
        self.method = method
        self.url = url
        self.reused = reused
        self.sent_at = time.monotonic()

    def response(self) -> Response:
        """Wait for the answer's status and headers."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the response of this exchange was already taken")
        self._conn = None
        try:
            raw = conn.getresponse()
        except _STALE_CONNECTION as error:
            conn.close()
            if self.reused:
                # The hub closed the idle kept-alive connection: not a failure of the hub.
                return self._transport.send(self.method, self.url, fresh=True).response()
            raise NetworkError(f"{self.method} failed: {describe_os_error(error)}") from error
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise _failure(self.method, error) from error
        self._transport.trace(f"< {raw.status} {raw.reason} ({self.method} {self.url})")
        return Response(self._transport, conn, raw, self.url)

    def cancel(self) -> None:
        """Drop the request: its connection is closed, its answer never read."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Transport:
    """Kept-alive HTTP(S) connections to one origin, with the API key on every request."""

    def __init__(self, base_url: str, *, headers: dict[str, str], timeout: float,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 trace: Optional[Trace] = None) -> None:
        self.origin = origin_of(base_url)
        self._headers = dict(headers)
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._trace = trace
        self._secret = headers.get("Authorization", "").partition(" ")[2] or None
        self._idle: list[http.client.HTTPConnection] = []

    def trace(self, message: str) -> None:
        if self._trace is not None:
            self._trace(redact(message, self._secret))

    def send(self, method: str, url: str, *, fresh: bool = False) -> Exchange:
        """Send a request on an idle connection (or a new one) without waiting for the answer."""
        if not same_origin_as(url, self.origin):
            raise ProtocolError(
                f"refusing to send the API key to another origin: {redact(url, self._secret)}"
            )
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        reused = bool(self._idle) and not fresh
        conn = self._idle.pop() if reused else self._connect()
        self.trace(f"> {method} {url}")
        try:
            conn.request(method, target, headers=self._headers)
        except _STALE_CONNECTION as error:
            conn.close()
            if reused:
                return self.send(method, url, fresh=True)
            raise NetworkError(f"{method} failed: {describe_os_error(error)}") from error
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise _failure(method, error) from error
        return Exchange(self, conn, method, url, reused)

    def request(self, method: str, url: str) -> Response:
        """Send a request and wait for its status and headers."""
        return self.send(method, url).response()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    def _connect(self) -> http.client.HTTPConnection:
        scheme, host, port = self.origin
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self._timeout,
                                               context=self._ssl_context)
        return http.client.HTTPConnection(host, port, timeout=self._timeout)


def same_origin_as(url: str, origin: tuple[str, str, int]) -> bool:
    """Whether ``url`` is absolute and on ``origin``."""
    try:
        return origin_of(url) == origin
    except ValueError:
        return False


def make_ssl_context(cacert: Optional[str] = None) -> ssl.SSLContext:
    """Certificate-verifying TLS context; ``cacert`` adds a private CA to the system's."""
    context = ssl.create_default_context()
    if cacert:
        context.load_verify_locations(cafile=cacert)
    return context
