"""HTTP over ``http.client``: kept-alive connections to the share's one origin.

The transport knows nothing of the async API. It sends requests to URLs of the share's own
origin only (anything else is refused, so the API key never leaves it), keeps connections
alive between requests, lets a request be sent before its answer is read (so the next page's
query can travel while the current page's body streams on another connection), and turns
every socket-level failure into :class:`hubasync.errors.NetworkError`.

A request sent on a kept-alive connection that the hub closed while it was idle is sent once
more on a new connection, at no cost to the retry budget: the hub did not fail, the connection
had simply been let go (HTTP/1.1 allows either side to close an idle connection).

Connections follow a :class:`hubasync.proxy.ProxyRoute`: direct, or through an HTTP proxy
(plain http in absolute form with ``Proxy-Authorization`` on each request; https in a
``CONNECT`` tunnel, the proxy's credentials only in the ``CONNECT``, the hub's certificate
checked against the hub's name).

Every failure names where it happened: the hub's ``host:port``, and the proxy's when there is
one (``cannot connect to hub.example.com:443: connection refused``). What asking again cannot
change is not transient, so not retried: a host name that does not exist (``EAI_NONAME``; a
resolver failing for now, ``EAI_AGAIN``, is retried), an untrusted certificate, and a TLS
mismatch (https to a port that speaks plain http, plain http to a port that speaks TLS, no TLS
version in common).
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import sys
import threading
import time
import weakref
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

from hubasync.core.redaction import redact
from hubasync.core.urls import ShareUrl, origin_of
from hubasync.errors import (
    BadBody,
    CertificateError,
    HostNotFound,
    HubUnavailable,
    NetworkError,
    ProtocolError,
    ProxyAuthError,
    TlsMismatch,
)
from hubasync.transport.proxy import DIRECT, Proxy, ProxyRoute, route_for
from hubasync.transport.tls import make_ssl_context, speaks_tls
from hubasync.version import __version__

CHUNK_SIZE = 128 * 1024
SMALL_BODY_LIMIT = 1024 * 1024
# Bounds on a proxy's answer to CONNECT (the whole answer must also come within --timeout).
MAX_PROXY_LINE = 8192
MAX_PROXY_HEADERS = 100

Trace = Callable[[str], None]
USER_AGENT = f"hubasync/{__version__} (Python {sys.version_info[0]}.{sys.version_info[1]})"

# What a kept-alive connection that the server closed while idle raises on reuse.
_STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


# getaddrinfo's answers that a name does not exist: asking again gets the same.
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
# OpenSSL's reasons for two ends that do not speak the same protocol, and what each means.
_NOT_TLS = "the server does not speak TLS there (plain http? then the URL is http://)"
_NO_TLS_VERSION = "no TLS version in common with the server"
_TLS_MISMATCH = {
    "WRONG_VERSION_NUMBER": _NOT_TLS, "PACKET_LENGTH_TOO_LONG": _NOT_TLS,
    "RECORD_LAYER_FAILURE": _NOT_TLS, "HTTP_REQUEST": _NOT_TLS,
    "UNSUPPORTED_PROTOCOL": _NO_TLS_VERSION, "TLSV1_ALERT_PROTOCOL_VERSION": _NO_TLS_VERSION,
    "NO_PROTOCOLS_AVAILABLE": _NO_TLS_VERSION, "VERSION_TOO_LOW": _NO_TLS_VERSION,
}
# The first bytes of a TLS record (alert, handshake) where an HTTP status line was expected.
_TLS_RECORD_STARTS = ("\x15\x03", "\x16\x03")
_SPEAKS_TLS = "the server there speaks TLS: the URL should be https://"


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
        return f"TLS error ({getattr(error, 'reason', None) or error})"
    if isinstance(error, socket.gaierror):
        if error.errno in _NO_SUCH_NAME:
            return f"the host name does not resolve ({error.strerror})"
        return f"cannot resolve the host name ({error.strerror})"
    if isinstance(error, http.client.IncompleteRead):
        return "body cut short"
    if isinstance(error, http.client.HTTPException):
        return f"malformed HTTP answer ({type(error).__name__})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _classified(message: str, error: BaseException) -> HubUnavailable:
    """The error for ``message``, a failure below HTTP caused by ``error``: final when asking
    again cannot change it (no such host, an untrusted certificate, a TLS mismatch)."""
    if isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_NAME:
        return HostNotFound(message)
    if isinstance(error, ssl.SSLCertVerificationError):
        return CertificateError(message + " (--cacert FILE adds a private CA)")
    reason = getattr(error, "reason", None) if isinstance(error, ssl.SSLError) else None
    if reason in _TLS_MISMATCH:
        return TlsMismatch(f"{message}: {_TLS_MISMATCH[reason]}")
    if isinstance(error, http.client.BadStatusLine) and str(error).startswith(_TLS_RECORD_STARTS):
        return TlsMismatch(f"{message}: {_SPEAKS_TLS}")
    return NetworkError(message)


def _failure(method: str, where: str, error: BaseException) -> HubUnavailable:
    """The error for a request to ``where`` that failed below HTTP."""
    return _classified(f"{method} to {where} failed: {describe_os_error(error)}", error)


def connect_failure(where: str, error: BaseException) -> HubUnavailable:
    """The error for a connection to ``where`` (``host:port``) that could not be made."""
    return _classified(f"cannot connect to {where}: {describe_os_error(error)}", error)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _proxy_down(proxy: Proxy, error: BaseException, target: str,
                connecting: bool = False) -> HubUnavailable:
    """The proxy at ``proxy`` failed on the way to the hub at ``target``."""
    said = f"proxy {proxy}: {describe_os_error(error)} (on the way to {target})"
    return _classified(f"cannot connect to {said}" if connecting else said, error)


def _proxy_refused(proxy: Proxy, status: int, reason: str, target: str) -> Exception:
    """The error for a proxy that answered ``status`` instead of doing what was asked."""
    said = f"{status} {reason[:100]}".strip()
    if status == 407:
        if proxy.username is None:
            return ProxyAuthError(f"the proxy {proxy} wants credentials ({said}): give them "
                                  "as http://USER:PASSWORD@HOST:PORT")
        return ProxyAuthError(f"the proxy {proxy} refused the credentials ({said})")
    return NetworkError(f"proxy {proxy} refused the tunnel to {target} ({said})")


def _read_proxy_head(sock: socket.socket, proxy: Proxy, timeout: float,
                     target: str) -> tuple[int, str, bytes]:
    """Status, reason and any bytes after the head of the proxy's answer to CONNECT; the
    headers are read and dropped.

    Bounded: lines of at most :data:`MAX_PROXY_LINE` bytes, at most
    :data:`MAX_PROXY_HEADERS` headers, the whole answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    buffer = b""
    lines: list[bytes] = []
    while True:
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            line = line.rstrip(b"\r")
            if not line:
                if not lines:
                    raise NetworkError(f"proxy {proxy} sent a malformed answer to CONNECT "
                                       f"{target}")
                return (*_status_of(lines[0], proxy, target), buffer)
            if len(line) > MAX_PROXY_LINE:
                raise NetworkError(f"proxy {proxy}: answer line longer than {MAX_PROXY_LINE} "
                                   f"bytes to CONNECT {target}")
            lines.append(line)
            if len(lines) > MAX_PROXY_HEADERS + 1:
                raise NetworkError(f"proxy {proxy}: more than {MAX_PROXY_HEADERS} headers in "
                                   f"its answer to CONNECT {target}")
        if len(buffer) > MAX_PROXY_LINE:
            raise NetworkError(f"proxy {proxy}: answer line longer than {MAX_PROXY_LINE} bytes "
                               f"to CONNECT {target}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(remaining)
        data = sock.recv(MAX_PROXY_LINE)
        if not data:
            raise NetworkError(f"proxy {proxy} closed the connection without answering CONNECT "
                               f"{target}")
        buffer += data


def _status_of(line: bytes, proxy: Proxy, target: str) -> tuple[int, str]:
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not (
            len(parts[1]) == 3 and parts[1].isdigit()):
        raise NetworkError(f"proxy {proxy} sent a malformed answer to CONNECT {target}")
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def open_tunnel(proxy: Proxy, host: str, port: int, timeout: float) -> socket.socket:
    """A socket to ``proxy`` on which CONNECT ``host:port`` succeeded (bytes now go to the hub).

    Only the proxy's own credentials travel in the CONNECT, never the API key.
    """
    authority = _netloc(host, port)
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    except OSError as error:
        raise _proxy_down(proxy, error, authority, connecting=True) from error
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization is not None:
            head.append(f"Proxy-Authorization: {proxy.authorization}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        status, reason, after = _read_proxy_head(sock, proxy, timeout, authority)
        if not 200 <= status < 300:
            raise _proxy_refused(proxy, status, reason, authority)
        if after:  # the hub cannot have spoken first in TLS
            raise NetworkError(f"proxy {proxy} sent bytes after its answer to CONNECT "
                               f"{authority}")
        sock.settimeout(timeout)
    except OSError as error:
        sock.close()
        raise _proxy_down(proxy, error, authority) from error
    except BaseException:
        sock.close()
        raise
    return sock


class _ProxiedHTTPConnection(http.client.HTTPConnection):
    """Plain http to the hub through a proxy: the connection is to the proxy."""

    def __init__(self, proxy: Proxy, timeout: float, target: str) -> None:
        super().__init__(proxy.host, proxy.port, timeout=timeout)
        self.proxy = proxy
        self.target = target

    def connect(self) -> None:
        try:
            super().connect()
        except OSError as error:
            raise _proxy_down(self.proxy, error, self.target, connecting=True) from error


class _TunnelledHTTPSConnection(http.client.HTTPSConnection):
    """https to the hub inside a CONNECT tunnel through a proxy; TLS is with the hub."""

    def __init__(self, proxy: Proxy, host: str, port: int, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.proxy = proxy
        self._tls = context
        self._connect_timeout = timeout

    def connect(self) -> None:
        raw = open_tunnel(self.proxy, self.host, self.port, self._connect_timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except OSError as error:
            raw.close()
            where = f"{_netloc(self.host, self.port)} through proxy {self.proxy}"
            raise connect_failure(where, error) from error
        except BaseException:
            raw.close()
            raise


class HttpResponse:
    """An answer whose status and headers have arrived; its body is read on demand.

    The connection goes back to the pool once the body has been read to its end, and is
    closed if the body is abandoned or fails.
    """

    def __init__(self, transport: HttpTransport, conn: http.client.HTTPConnection,
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
            raise NetworkError(f"reading the body from {self._transport.where} failed: "
                               f"{describe_os_error(error)}") from error
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
        """Give up on the body: the connection cannot be reused. Safe from another thread than
        the one reading the body, whose read ends at once (a socket closed under a blocked read
        would not wake it: it is shut down first)."""
        conn = self._conn
        if conn is not None:
            sock = conn.sock
            if sock is not None:
                try:  # socket.socket's: ssl.SSLSocket.shutdown drops TLS under the reader first
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass
            conn.close()
            self._conn = None

    def _release(self) -> None:
        if self._conn is not None:
            if self._raw.will_close:
                self._conn.close()
            else:
                self._transport._idle.append(self._conn)
            self._conn = None


class HttpExchange:
    """A request that has been sent and whose answer has not been read yet."""

    def __init__(self, transport: HttpTransport, conn: http.client.HTTPConnection, method: str,
                 url: str, reused: bool) -> None:
        self._transport = transport
        self._conn: Optional[http.client.HTTPConnection] = conn
        self.method = method
        self.url = url
        self.reused = reused
        self.sent_at = time.monotonic()

    def ready(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the answer's first bytes; True once they came,
        or when the connection is gone (then :meth:`response` raises)."""
        conn = self._conn
        sock = None if conn is None else conn.sock
        if sock is None:
            return True
        pending = getattr(sock, "pending", None)  # bytes TLS already decrypted
        if pending is not None and pending():
            return True
        try:
            readable, _, failed = select.select([sock], [], [sock], max(0.0, timeout))
        except (OSError, ValueError):  # closed meanwhile (a stop): the response says so
            return True
        return bool(readable or failed)

    def response(self) -> HttpResponse:
        """Wait for the answer's status and headers."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the response of this exchange was already taken")
        self._conn = None
        transport = self._transport
        try:
            raw = conn.getresponse()
        except _STALE_CONNECTION as error:
            conn.close()
            if self.reused:
                # The hub closed the idle kept-alive connection: not a failure of the hub.
                return transport.send(self.method, self.url, fresh=True).response()
            if transport.closed_by_tls_server():
                raise TlsMismatch(f"{self.method} to {transport.where} failed: "
                                  f"{_SPEAKS_TLS}") from error
            raise NetworkError(f"{self.method} to {transport.where} failed: "
                               f"{describe_os_error(error)}") from error
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise _failure(self.method, transport.where, error) from error
        transport.trace(f"< {raw.status} {raw.reason} ({self.method} {self.url})")
        proxy = transport.plain_proxy
        if raw.status == 407 and proxy is not None:
            conn.close()
            raise _proxy_refused(proxy, raw.status, raw.reason, transport.netloc)
        return HttpResponse(self._transport, conn, raw, self.url)

    def cancel(self) -> None:
        """Drop the request: its connection is closed, its answer never read."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class HttpTransport:
    """Kept-alive HTTP(S) connections to one origin, with the API key on every request."""

    def __init__(self, base_url: str, *, headers: dict[str, str], timeout: float,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 trace: Optional[Trace] = None, route: ProxyRoute = DIRECT) -> None:
        self.origin = origin_of(base_url)
        self.route = route
        self.netloc = _netloc(*self.origin[1:])
        # Where a request goes, as every failure names it.
        self.where = self.netloc + (f" through proxy {route.proxy}" if route.proxy else "")
        self._headers = dict(headers)
        self._timeout = timeout
        self._ssl_context = ssl_context
        self._trace = trace
        self._secrets = (headers.get("Authorization", "").partition(" ")[2] or None,
                         *route.secrets)
        self._idle: list[http.client.HTTPConnection] = []
        # Every connection made, for abort(): the only member another thread may touch.
        self._made: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        self._made_lock = threading.Lock()
        # Plain http through a proxy: every request carries the proxy's credentials.
        self.plain_proxy = route.proxy if self.origin[0] == "http" else None
        if self.plain_proxy is not None and self.plain_proxy.authorization is not None:
            self._headers["Proxy-Authorization"] = self.plain_proxy.authorization

    def trace(self, message: str) -> None:
        if self._trace is not None:
            self._trace(redact(message, *self._secrets))

    def send(self, method: str, url: str, *, fresh: bool = False) -> HttpExchange:
        """Send a request on an idle connection (or a new one) without waiting for the answer."""
        if not same_origin_as(url, self.origin):
            raise ProtocolError(
                f"refusing to send the API key to another origin: {redact(url, *self._secrets)}"
            )
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if self.plain_proxy is not None:
            _, host, port = self.origin
            target = f"http://{_netloc(host, port)}{target}"  # absolute form, for the proxy
        reused = bool(self._idle) and not fresh
        conn = self._idle.pop() if reused else self._connect()
        self.trace(f"> {method} {url}" + ("" if reused else
                                           f" (new connection, {self.route.describe()})"))
        if not reused:
            self._open(conn)
        try:
            conn.request(method, target, headers=self._headers)
        except _STALE_CONNECTION as error:
            conn.close()
            if reused:
                return self.send(method, url, fresh=True)
            raise NetworkError(f"{method} to {self.where} failed: "
                               f"{describe_os_error(error)}") from error
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise _failure(method, self.where, error) from error
        return HttpExchange(self, conn, method, url, reused)

    def _open(self, conn: http.client.HTTPConnection) -> None:
        """Connect (and shake hands, for https), so that a failure says it could not connect."""
        try:
            conn.connect()
        except HubUnavailable:  # through a proxy: already said, naming the proxy
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            raise connect_failure(self.where, error) from error
        except BaseException:
            conn.close()
            raise

    def closed_by_tls_server(self) -> bool:
        """Whether a plain http connection the hub closed unanswered went to a port that speaks
        TLS (as a TLS server closes on a plain request); asked only then, direct only."""
        scheme, host, port = self.origin
        return scheme == "http" and self.route.proxy is None and speaks_tls(
            host, port, self._timeout)

    def request(self, method: str, url: str) -> HttpResponse:
        """Send a request and wait for its status and headers."""
        return self.send(method, url).response()

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    def abort(self) -> None:
        """Shut every connection down, from any thread: a read or a write waiting on one fails
        at once (the thread driving the run sees a NetworkError)."""
        with self._made_lock:
            made = list(self._made)
        for conn in made:
            sock = conn.sock
            if sock is not None:
                try:  # socket.socket's: ssl.SSLSocket.shutdown drops TLS under the reader first
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

    def _connect(self) -> http.client.HTTPConnection:
        conn = self._new_connection()
        with self._made_lock:
            self._made.add(conn)
        return conn

    def _new_connection(self) -> http.client.HTTPConnection:
        scheme, host, port = self.origin
        proxy = self.route.proxy
        if proxy is not None:
            if scheme == "https":
                return _TunnelledHTTPSConnection(proxy, host, port, self._timeout,
                                                 self._ssl_context or make_ssl_context())
            return _ProxiedHTTPConnection(proxy, self._timeout, self.netloc)
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


def hub_transport(share: ShareUrl, apikey: str, *, timeout: float, cacert: Optional[str] = None,
                  trace: Optional[Trace] = None, proxy: Optional[str] = None) -> HttpTransport:
    """Kept-alive HTTP(S) connections to the share's origin, sending the key with each request."""
    headers = {
        "Authorization": f"token {apikey}",
        "Accept": "application/json",
        "Accept-Encoding": "gzip",
        "User-Agent": USER_AGENT,
    }
    context = make_ssl_context(cacert) if share.scheme == "https" else None
    scheme, host, port = origin_of(share.post_url)
    return HttpTransport(share.post_url, headers=headers, timeout=timeout, ssl_context=context,
                     trace=trace, route=route_for(proxy, scheme, host, port))
