"""Metrics of the sync service: counters and gauges with labels, in Prometheus text format 0.0.4.

``Registry`` holds the families and renders them (``exposition``); ``ServiceMetrics`` names the
ones the service keeps per share; ``MetricsServer`` serves ``/metrics`` over HTTP. Label values
are share names and the fixed :data:`ERROR_KINDS` only: never text from a hub.

The server cannot hurt the downloads, whoever connects: it is ONE thread (``selectors``, no
thread per connection) holding at most ``max_connections`` connections (a connection past them
is accepted and closed at once), each with ``deadline`` seconds from its accept to the last
byte of the answer (not renewed by each byte that arrives), and a request (line and headers)
of at most ``max_request_bytes``. Answers are HTTP/1.0 with ``Connection: close``: GET or HEAD
of ``/metrics`` is 200, any other path 404, any other method 405, a bad request 400, a request
too large 431.

Who touches what: the registry is shared, under its lock; the server's sockets and connections
belong to its thread alone; :meth:`MetricsServer.stop` only sets a flag and writes a byte to
the thread's wake-up socket, then joins it.
"""

from __future__ import annotations

import errno
import math
import selectors
import socket
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple, Union

import hubasync.errors as errors
from hubasync.errors import UsageError
from hubasync.version import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CONNECTIONS = 16  # open scraper connections; one more is accepted and closed at once
REQUEST_DEADLINE = 5.0  # seconds from a connection's accept to the last byte of its answer
MAX_REQUEST_BYTES = 8192  # of a request line and its headers
LISTEN_BACKLOG = 64
# The kinds of error counted in hubasync_errors_total: the error classes of hubasync.errors,
# and "internal" for anything else (a bug).
ERROR_KINDS = frozenset(
    name for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.HubasyncError)) | {"internal"}

LabelValues = Tuple[str, ...]


def parse_listen_address(text: str) -> Tuple[str, int]:
    """ "HOST:PORT" (or "[IPv6]:PORT") as (host, port); port 0 means any; ValueError if bad."""
    host, colon, port_text = text.rpartition(":")
    if not colon:
        raise ValueError("expected HOST:PORT, e.g. 127.0.0.1:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 host in brackets, e.g. [::1]:9464")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port {port_text!r} is not a number from 0 to 65535")
    return host, int(port_text)


class _Family:
    """One metric's name, help, type, label names, and a value per combination of labels."""

    def __init__(self, name: str, help_text: str, kind: str, labels: Tuple[str, ...],
                 lock: threading.Lock) -> None:
        self.name = name
        self.help = help_text
        self.kind = kind
        self.labels = labels
        self._lock = lock
        self._values: Dict[LabelValues, float] = {}

    def _key(self, labels: Dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes the labels {', '.join(self.labels) or 'none'}, "
                             f"not {', '.join(sorted(labels)) or 'none'}")
        return tuple(str(labels[name]) for name in self.labels)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def _add(self, amount: float, labels: Dict[str, str]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def _set(self, value: float, labels: Dict[str, str]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def lines(self) -> Iterator[str]:
        """The family's exposition; the caller holds the registry's lock."""
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for key in sorted(self._values):
            pairs = ",".join(f'{name}="{_escape_label(value)}"'
                             for name, value in zip(self.labels, key))
            shown = f"{{{pairs}}}" if pairs else ""
            yield f"{self.name}{shown} {_number(self._values[key])}"


class Counter(_Family):
    """A value that only goes up; its name ends in ``_total``."""

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self._add(amount, labels)

    def touch(self, **labels: str) -> None:
        """Make the labels' series appear, at 0 if it has no value yet."""
        self._add(0.0, labels)


class Gauge(_Family):
    """A value that is set (or moves up and down)."""

    def set(self, value: float, **labels: str) -> None:
        self._set(value, labels)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._add(amount, labels)


class Registry:
    """The metric families of one process, rendered in the order they were made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: Dict[str, _Family] = {}

    def counter(self, name: str, help_text: str, labels: Tuple[str, ...] = ()) -> Counter:
        if not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name}")
        counter = Counter(name, help_text, "counter", labels, self._lock)
        self._add(counter)
        return counter

    def gauge(self, name: str, help_text: str, labels: Tuple[str, ...] = ()) -> Gauge:
        gauge = Gauge(name, help_text, "gauge", labels, self._lock)
        self._add(gauge)
        return gauge

    def _add(self, family: _Family) -> None:
        with self._lock:
            if family.name in self._families:
                raise ValueError(f"the metric {family.name} exists already")
            self._families[family.name] = family

    def exposition(self) -> str:
        """Every family in the text format 0.0.4, ending with a newline."""
        with self._lock:
            lines: List[str] = []
            for family in self._families.values():
                lines.extend(family.lines())
        return "".join(line + "\n" for line in lines)


class ServiceMetrics:
    """The metrics ``hubasync sync`` keeps, per share (and per kind of error)."""

    def __init__(self, registry: Optional[Registry] = None) -> None:
        self.registry = registry or Registry()
        r = self.registry
        self.events = r.counter("hubasync_events_total", "Events written to the share's output.",
                                ("share",))
        self.pages = r.counter("hubasync_pages_total", "Pages committed to the share's output.",
                               ("share",))
        self.errors = r.counter("hubasync_errors_total",
                                "Failed passes of the share, by kind of error.",
                                ("share", "kind"))
        self.last_success = r.gauge("hubasync_last_success_timestamp_seconds",
                                    "Unix time the share's last pass succeeded.", ("share",))
        self.up = r.gauge("hubasync_up", "1 when the share's last pass succeeded, else 0.",
                          ("share",))
        self.behind = r.gauge("hubasync_behind_seconds",
                              "Seconds since the share's output was last known caught up.",
                              ("share",))
        self.build_info = r.gauge("hubasync_build_info", "The running hubasync's version, as a "
                                  "label; the value is always 1.", ("version",))
        self.build_info.set(1, version=__version__)
        to = ("share", "destination")
        self.delivered = r.counter("hubasync_delivered_total",
                                   "Events sent to the destination (again after a failure too).",
                                   to)
        self.acknowledged = r.counter("hubasync_acknowledged_total",
                                      "Events the destination's receiver acknowledged.", to)
        self.delivery_retries = r.counter("hubasync_delivery_retries_total",
                                          "Failed deliveries to the destination, tried again.", to)
        self.dead_letters = r.counter("hubasync_dead_letters_total",
                                      "Events the destination rejected for good, in its "
                                      "dead-letter file.", to)
        self.lag = r.gauge("hubasync_delivery_lag_events",
                           "Events of the share's output the destination has still to take.", to)
        self.last_ack = r.gauge("hubasync_last_acknowledgement_timestamp_seconds",
                                "Unix time of the destination's last acknowledgement.", to)

    def add_share(self, share: str) -> None:
        """Make a share's series appear before its first pass (counters at 0, down)."""
        self.events.touch(share=share)
        self.pages.touch(share=share)
        self.up.set(0, share=share)

    def page(self, share: str, events: int) -> None:
        """A page with ``events`` events was committed."""
        self.pages.inc(share=share)
        self.events.inc(events, share=share)

    def failure(self, share: str, kind: str) -> None:
        """A pass failed with an error of ``kind``: one of :data:`ERROR_KINDS` (the error's class
        name, see :func:`error_kind`); any other is counted as ``internal``."""
        self.errors.inc(share=share, kind=kind if kind in ERROR_KINDS else "internal")
        self.up.set(0, share=share)

    def add_destination(self, share: str, destination: str) -> None:
        """Make a destination's series appear before its first delivery."""
        for counter in (self.delivered, self.acknowledged, self.delivery_retries,
                        self.dead_letters):
            counter.touch(share=share, destination=destination)

    def delivery(self, share: str, destination: str, *, sent: int, acknowledged: int, dead: int,
                 retried: bool, lag: int, last_ack: Optional[float]) -> None:
        """A batch went to ``destination``: what it took, and where it stands."""
        labels = {"share": share, "destination": destination}
        self.delivered.inc(sent, **labels)
        self.acknowledged.inc(acknowledged, **labels)
        self.dead_letters.inc(dead, **labels)
        if retried:
            self.delivery_retries.inc(1, **labels)
        self.lag.set(lag, **labels)
        if last_ack is not None:
            self.last_ack.set(last_ack, **labels)

    def success(self, share: str, when: float) -> None:
        """A pass succeeded at Unix time ``when``: the share is up and caught up."""
        self.last_success.set(when, share=share)
        self.up.set(1, share=share)
        self.behind.set(0, share=share)

    def render(self) -> str:
        return self.registry.exposition()


def error_kind(error: BaseException) -> str:
    """The kind ``error`` is counted as: its nearest class among :data:`ERROR_KINDS`
    (``UnreadableFile`` counts as ``OutputError``), else ``internal``: a bug."""
    return next((cls.__name__ for cls in type(error).__mro__ if cls.__name__ in ERROR_KINDS
                 and getattr(errors, cls.__name__, None) is cls), "internal")


class MetricsServer:
    """Serves a registry at ``/metrics`` from one background thread (see the module's text)."""

    def __init__(self, registry: Union[Registry, ServiceMetrics], address: str, *,
                 max_connections: int = MAX_CONNECTIONS, deadline: float = REQUEST_DEADLINE,
                 max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self._registry = registry.registry if isinstance(registry, ServiceMetrics) else registry
        self._max_connections = max_connections
        self._deadline = deadline
        self._max_request_bytes = max_request_bytes
        try:
            host, port = parse_listen_address(address)
        except ValueError as error:
            raise UsageError(f"metrics {address}: {error}") from None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(LISTEN_BACKLOG)
        except OSError as error:
            listener.close()
            raise UsageError(f"metrics: cannot listen on {address}: "
                             f"{error.strerror or error}") from None
        listener.setblocking(False)
        self._listener = listener
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="hubasync-metrics", daemon=True)

    @property
    def address(self) -> Tuple[str, int]:
        """The (host, port) bound: the real port when 0 was asked for."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and the port; returns once the thread has ended."""
        if self._thread.is_alive():
            self._stopping = True
            try:
                self._wake_writer.send(b"x")
            except OSError:
                pass  # its buffer is full: the thread is awake anyway
            self._thread.join()
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server's thread ------------------------------------------------------------------

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        connections: Dict[socket.socket, _Connection] = {}
        selector.register(self._wake_reader, selectors.EVENT_READ)
        listening_again = 0.0  # while out of descriptors: when to try accepting again
        selector.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stopping:
                now = time.monotonic()
                wake = [c.deadline for c in connections.values()]
                if listening_again:
                    wake.append(listening_again)
                timeout = max(0.0, min(wake) - now) if wake else None
                for key, _ in selector.select(timeout):
                    if key.fileobj is self._wake_reader:
                        _drain(self._wake_reader)
                    elif key.fileobj is self._listener:
                        if not self._accept(selector, connections):
                            selector.unregister(self._listener)
                            listening_again = time.monotonic() + 0.1
                    else:
                        connection = connections[key.fileobj]  # type: ignore[index]
                        if not connection.advance(self._registry):
                            self._close(selector, connections, connection)
                        elif connection.answer is not None and not connection.writing:
                            selector.modify(connection.sock, selectors.EVENT_WRITE)
                            connection.writing = True
                now = time.monotonic()
                for connection in [c for c in connections.values() if c.deadline <= now]:
                    self._close(selector, connections, connection)
                if listening_again and now >= listening_again:
                    listening_again = 0.0
                    selector.register(self._listener, selectors.EVENT_READ)
        finally:
            for connection in list(connections.values()):
                self._close(selector, connections, connection)
            selector.close()

    def _accept(self, selector: selectors.BaseSelector,
                connections: Dict[socket.socket, _Connection]) -> bool:
        """Accept what is waiting; False when the process is out of descriptors."""
        for _ in range(LISTEN_BACKLOG):
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return True
            except OSError as error:
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return False
                continue  # the client gave up (ECONNABORTED...): the next one
            if len(connections) >= self._max_connections:
                sock.close()  # past the cap: closed at once
                continue
            sock.setblocking(False)
            connection = _Connection(sock, time.monotonic() + self._deadline,
                                     self._max_request_bytes)
            connections[sock] = connection
            selector.register(sock, selectors.EVENT_READ)
        return True

    @staticmethod
    def _close(selector: selectors.BaseSelector, connections: Dict[socket.socket, _Connection],
               connection: _Connection) -> None:
        del connections[connection.sock]
        selector.unregister(connection.sock)
        connection.sock.close()


class _Connection:
    """One scraper's connection: its request read, then its answer written, by its deadline."""

    def __init__(self, sock: socket.socket, deadline: float, max_request_bytes: int) -> None:
        self.sock = sock
        self.deadline = deadline
        self.answer: Optional[memoryview] = None  # set once the request is whole
        self.writing = False  # the selector waits for the socket to be writable
        self._limit = max_request_bytes
        self._request = b""

    def advance(self, registry: Registry) -> bool:
        """Read or write what the socket allows; False when the connection is done."""
        try:
            if self.answer is None and not self._read(registry):
                return False
            if self.answer is not None:
                sent = self.sock.send(self.answer)
                self.answer = self.answer[sent:]
                if not self.answer:
                    self.sock.shutdown(socket.SHUT_WR)
                    return False
            return True
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _read(self, registry: Registry) -> bool:
        data = self.sock.recv(4096)
        if not data:
            return False  # the client left before its request was whole
        self._request += data
        end = _end_of_head(self._request)
        if end < 0 and len(self._request) <= self._limit:
            return True  # more to come
        if end < 0 or end > self._limit:
            answer = _answer(431, f"the request line and headers are over {self._limit} bytes\n")
        else:
            answer = _respond(self._request[:end], registry)
        self.answer = memoryview(answer)
        return True


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large"}


def _end_of_head(request: bytes) -> int:
    """Where the request's head (line and headers) ends, blank line included; -1 if it has not."""
    ends = [at + len(mark) for mark in (b"\r\n\r\n", b"\n\n")
            for at in (request.find(mark),) if at >= 0]
    return min(ends) if ends else -1


def _respond(head: bytes, registry: Registry) -> bytes:
    """The whole answer to a request's head."""
    parts = head.decode("latin-1").split("\n", 1)[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _answer(400, "expected: GET /metrics HTTP/1.1\n")
    method, target, _ = parts
    if method not in ("GET", "HEAD"):
        return _answer(405, "only GET and HEAD\n", allow="GET, HEAD")
    if target.split("?", 1)[0] != "/metrics":
        return _answer(404, "not found: metrics are at /metrics\n", body=method == "GET")
    return _answer(200, registry.exposition(), content_type=CONTENT_TYPE, body=method == "GET")


def _answer(status: int, text: str, *, content_type: str = "text/plain; charset=utf-8",
            body: bool = True, allow: Optional[str] = None) -> bytes:
    content = text.encode("utf-8")
    head = [f"HTTP/1.0 {status} {_REASONS[status]}", f"Content-Type: {content_type}",
            f"Content-Length: {len(content)}", "Connection: close"]
    if allow is not None:
        head.append(f"Allow: {allow}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + (content if body else b"")


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)
