"""A tiny scripted hub (and a recorder) over real sockets, on 127.0.0.1 by default, for tests
that need answers the simulator does not give: foreign ``Location`` headers, TLS, odd bodies.

    hub = FakeHub(routes={("POST", "/shares/v2/async/demo"): reply(202, Location="...")})
    with hub:
        hub.url            # "http://127.0.0.1:PORT"
        hub.requests       # every request seen: method, request line target, headers
        hub.connections    # connections accepted

Without ``routes`` it answers like a hub for one tiny share ``demo`` (``TINY_EVENTS``), key
``key``: POST -> 202 jobs/1, GET jobs/1 -> 302 results/1, GET results/1 -> 200 the events.

Answers are described as in ``tests/core/memory_hub.py`` (the hub in memory, no socket):
``reply(status, *chunks, **headers)``, header names with ``_`` for ``-``
(``reply(503, Retry_After="2")``), the body in chunks of bytes, here each sent by its own
write. A reply made with ``streamed`` sends the chunks a function yields, without a
Content-Length, and closes the connection: a body of any size (a decompression bomb) without
holding it in memory. ``answer(url, status, *chunks, **headers)`` is the same answer as the
decision functions of ``hubasync.core.answers`` see it, for testing them without any hub.
"""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from hubasync.core.answers import Answer

TINY_EVENTS = [
    {"observation time": "2020-10-01 00:00:00Z", "feed": "alpha", "ip": "192.0.2.1"},
    {"observation time": "2020-10-01 00:00:01Z", "feed": "beta", "ip": "192.0.2.2"},
    {"observation time": "2020-10-01 00:00:02Z", "feed": "gamma", "ip": "192.0.2.3"},
]
SHARE = "/shares/v2/async/demo"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Dict[str, str] = field(default_factory=dict)
    body: Tuple[bytes, ...] = ()
    stream: Optional[Callable[[], Iterable[bytes]]] = None


def _header_names(headers: Dict[str, str]) -> Dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def reply(status: int, *chunks: bytes, **headers: str) -> Reply:
    """An answer; header names use ``_`` for ``-`` (``Retry_After="1"``); the body in chunks."""
    return Reply(status, _header_names(headers), chunks)


def streamed(status: int, chunks: Callable[[], Iterable[bytes]], **headers: str) -> Reply:
    """An answer whose body is what ``chunks()`` yields, sent as it is made, then closed."""
    return Reply(status, _header_names(headers), stream=chunks)


def answer(url: str, status: int, *chunks: bytes, **headers: str) -> Answer:
    """What the decision functions (``after_post``...) see of ``reply(status, *chunks,
    **headers)`` answering a request for ``url``: headers looked up in any case."""
    named = {name.lower(): value for name, value in _header_names(headers).items()}
    return Answer(url, status, lambda name: named.get(name.lower()), b"".join(chunks))


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # the request line's target: path and query
    headers: Dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


Route = Callable[["FakeHub", Seen], Reply]


def tiny_share(apikey: str = "key", events: Optional[List[Dict[str, Any]]] = None,
               ) -> Dict[Tuple[str, str], Any]:
    """Routes of a well-behaved hub serving ``events`` in one page to ``apikey``."""
    body = json.dumps(TINY_EVENTS if events is None else events).encode()

    def guarded(given: Reply) -> Route:
        def route(hub: FakeHub, seen: Seen) -> Reply:
            if seen.headers.get("authorization") != f"token {apikey}":
                return reply(401, b'{"title": "401 Unauthorized"}')
            return given
        return route

    return {
        ("POST", SHARE): guarded(reply(202, Location=f"{SHARE}/jobs/1")),
        ("GET", f"{SHARE}/jobs/1"): guarded(reply(302, Location=f"{SHARE}/results/1")),
        ("GET", f"{SHARE}/results/1"): guarded(reply(200, body,
                                                     Content_Type="application/json")),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.hub.lock:
            self.hub.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _respond(self) -> None:
        hub = self.server.hub
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        with hub.lock:
            hub.requests.append(seen)
        route = hub.routes.get((self.command, seen.path))
        if route is None:
            chosen = reply(404, b'{"title": "404 Not Found"}')
        elif isinstance(route, Reply):
            chosen = route
        else:
            chosen = route(hub, seen)
        self.send_response(chosen.status)
        for name, value in chosen.headers.items():
            self.send_header(name, value)
        if chosen.stream is None:
            self.send_header("Content-Length", str(sum(map(len, chosen.body))))
            self.end_headers()
            for chunk in chosen.body:
                self.wfile.write(chunk)
            return
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in chosen.stream():
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _respond


@dataclass
class FakeHub:
    """A scripted HTTP(S) server in a thread; ``routes`` map (method, path) to a Reply or Route."""

    routes: Dict[Tuple[str, str], Any] = field(default_factory=tiny_share)
    ssl_context: Optional[ssl.SSLContext] = None
    host: str = "127.0.0.1"
    requests: List[Seen] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server = _Server((self.host, 0), _Handler)
        self._server.hub = self
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(self._server.socket,
                                                               server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> FakeHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
