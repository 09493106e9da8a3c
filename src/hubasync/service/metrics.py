"""Metrics of the sync service: counters and gauges with labels, in Prometheus text format 0.0.4.

``Registry`` holds the families and renders them (``exposition``); ``ServiceMetrics`` names the
ones the service keeps per share; ``MetricsServer`` serves ``/metrics`` over HTTP from a
background thread (the standard library's ``http.server``). All of it is thread-safe.
"""

from __future__ import annotations

import math
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Iterator, List, Optional, Tuple, Union

from hubasync.errors import UsageError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_TIMEOUT = 10.0  # seconds a scraper's connection may stay silent before it is closed

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
        """A pass failed with an error of ``kind`` (e.g. the error's class name)."""
        self.errors.inc(share=share, kind=kind)
        self.up.set(0, share=share)

    def success(self, share: str, when: float) -> None:
        """A pass succeeded at Unix time ``when``: the share is up and caught up."""
        self.last_success.set(when, share=share)
        self.up.set(1, share=share)
        self.behind.set(0, share=share)

    def render(self) -> str:
        return self.registry.exposition()


class MetricsServer:
    """Serves a registry at ``/metrics`` on a background thread; 404 on any other path."""

    def __init__(self, registry: Union[Registry, ServiceMetrics], address: str) -> None:
        self._registry = registry.registry if isinstance(registry, ServiceMetrics) else registry
        try:
            host, port = parse_listen_address(address)
        except ValueError as error:
            raise UsageError(f"metrics {address}: {error}") from None
        server_class = _IPv6Server if ":" in host else _Server
        try:
            self._server = server_class((host, port), _handler_for(self._registry))
        except OSError as error:
            raise UsageError(f"metrics: cannot listen on {address}: "
                             f"{error.strerror or error}") from None
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="hubasync-metrics", daemon=True)

    @property
    def address(self) -> Tuple[str, int]:
        """The (host, port) bound: the real port when 0 was asked for."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


def _handler_for(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT
        server_version = "hubasync-metrics"
        sys_version = ""

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                status, content_type = 200, CONTENT_TYPE
                body = registry.exposition().encode("utf-8")
            else:
                status, content_type = 404, "text/plain; charset=utf-8"
                body = b"not found: metrics are at /metrics\n"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # a scrape is not a notable event

    return Handler


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
