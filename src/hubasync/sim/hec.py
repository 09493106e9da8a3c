"""A Splunk HTTP Event Collector, simulated: the answers Splunk documents (status, text and
code), tokens, channels, indexer acknowledgement, busy answers, bodies too large, and every
event it indexed kept in order for tests to read back.

    from hubasync.sim.hec import HecConfig, HecReceiver
    with HecReceiver(HecConfig(token="t0ken")) as hec:
        hec.url                       # "http://127.0.0.1:PORT"
        hec.events()                  # the indexed events, in order, with channel and ackId
        hec.busy(2)                   # the next 2 event posts answer 503 Server is busy
        hec.hold_acks(True)           # acknowledgements stay false until released

This is not Splunk: it was written from Splunk's documentation and not tested against a real
Splunk (docs/simulator.md).
"""

from __future__ import annotations

import json
import random
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type
from urllib.parse import parse_qs, urlsplit

EVENT_PATHS = ("/services/collector", "/services/collector/event",
               "/services/collector/event/1.0")
ACK_PATH = "/services/collector/ack"
HEALTH_PATH = "/services/collector/health"

# Splunk's documented HEC answers: (HTTP status, code, text).
SUCCESS = (200, 0, "Success")
TOKEN_DISABLED = (403, 1, "Token disabled")
TOKEN_REQUIRED = (401, 2, "Token is required")
INVALID_AUTHORIZATION = (401, 3, "Invalid authorization")
INVALID_TOKEN = (403, 4, "Invalid token")
NO_DATA = (400, 5, "No data")
INVALID_DATA_FORMAT = (400, 6, "Invalid data format")
INCORRECT_INDEX = (400, 7, "Incorrect index")
SERVER_BUSY = (503, 9, "Server is busy")
CHANNEL_MISSING = (400, 10, "Data channel is missing")
INVALID_CHANNEL = (400, 11, "Invalid data channel")
EVENT_REQUIRED = (400, 12, "Event field is required")
EVENT_BLANK = (400, 13, "Event field cannot be blank")
ACK_DISABLED = (400, 14, "ACK is disabled")
INDEXED_FIELDS = (400, 15, "Error in handling indexed fields")
HEALTHY = (200, 17, "HEC is healthy")


@dataclass
class HecConfig:
    """One simulated HEC (see docs/simulator.md)."""

    host: str = "127.0.0.1"
    port: int = 0
    token: str = "hec-token"
    ack: bool = True  # indexer acknowledgement on (the token's useACK)
    token_disabled: bool = False
    busy_rate: float = 0.0  # each event post answers 503 with this probability
    retry_after: Optional[float] = None  # Retry-After on 503 answers, when set
    max_content_length: int = 1_000_000  # larger bodies answer 413
    ack_delay: float = 0.0  # seconds from indexing until an ack reads true
    indexes: Sequence[str] = field(default_factory=tuple)  # allowed indexes; empty: any
    seed: int = 1
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"hec port out of range: {self.port}")
        if not self.token or any(c.isspace() for c in self.token):
            raise ValueError("hec token must be a non-empty string without spaces")
        if not 0.0 <= self.busy_rate <= 1.0:
            raise ValueError("hec busy rate must be between 0 and 1")
        if self.max_content_length < 1 or self.ack_delay < 0:
            raise ValueError("hec max content length must be >= 1 and ack delay >= 0")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("hec tls needs both a certificate and a key")


class _State:
    """What the handlers share: the indexed events, acks per channel, counters."""

    def __init__(self, config: HecConfig) -> None:
        self.config = config
        self.lock = threading.Lock()
        self.events: List[Dict[str, Any]] = []
        self.acks: Dict[str, Dict[int, float]] = {}  # channel: {ackId: time indexed}
        self.next_ack: Dict[str, int] = {}
        self.busy_left = 0
        self.busy_after = 0  # event posts answered normally before busy_left applies
        self.held = False
        self.random = random.Random(config.seed)
        self.statuses: Dict[int, int] = {}
        self.requests = 0

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _answer(status_code_text: Tuple[int, int, str], **extra: Any) -> Tuple[int, Dict[str, Any]]:
    status, code, text = status_code_text
    return status, dict({"text": text, "code": code}, **extra)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SplunkHecSim/1.0"
    timeout = 120
    state: _State  # set on the server's handler class

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass

    def _send(self, status: int, body: Dict[str, Any],
              headers: Sequence[Tuple[str, str]] = ()) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.state.count(status)

    def _body(self) -> Optional[bytes]:
        length = int(self.headers.get("Content-Length") or 0)
        limit = self.state.config.max_content_length
        if length > limit:
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._send(413, {"text": f"Content-Length of {length} too large (maximum is "
                                     f"{limit})", "code": 413})
            return None
        return self.rfile.read(length) if length else b""

    def _authorised(self) -> bool:
        config = self.state.config
        value = self.headers.get("Authorization")
        if value is None:
            self._send(*_answer(TOKEN_REQUIRED))
            return False
        scheme, _, token = value.partition(" ")
        if scheme != "Splunk" or not token:
            self._send(*_answer(INVALID_AUTHORIZATION))
            return False
        if token.strip() != config.token:
            self._send(*_answer(INVALID_TOKEN))
            return False
        if config.token_disabled:
            self._send(*_answer(TOKEN_DISABLED))
            return False
        return True

    def _channel(self) -> Tuple[bool, Optional[str]]:
        """(ok, channel); answers the request itself when not ok."""
        query = parse_qs(urlsplit(self.path).query)
        channel: Optional[str] = self.headers.get("X-Splunk-Request-Channel")
        if channel is None and query.get("channel"):
            channel = query["channel"][0]
        if channel is None:
            if self.state.config.ack:
                self._send(*_answer(CHANNEL_MISSING))
                return False, None
            return True, None
        try:
            uuid.UUID(channel)
        except ValueError:
            self._send(*_answer(INVALID_CHANNEL))
            return False, None
        return True, channel

    def do_GET(self) -> None:  # noqa: N802 (the base's name)
        if urlsplit(self.path).path.rstrip("/") == HEALTH_PATH:
            self._send(*_answer(HEALTHY))
        else:
            self._send(404, {"text": "The requested URL was not found on this server.",
                             "code": 404})

    def do_POST(self) -> None:  # noqa: N802
        with self.state.lock:
            self.state.requests += 1
        path = urlsplit(self.path).path.rstrip("/")
        if path not in EVENT_PATHS and path != ACK_PATH:
            self._body()
            self._send(404, {"text": "The requested URL was not found on this server.",
                             "code": 404})
            return
        body = self._body()
        if body is None or not self._authorised():
            return
        if path == ACK_PATH:
            self._acks(body)
        else:
            self._events(body)

    def _busy(self) -> bool:
        state = self.state
        with state.lock:
            if state.busy_left > 0:
                if state.busy_after > 0:
                    state.busy_after -= 1
                    return False
                state.busy_left -= 1
                return True
            return state.config.busy_rate > 0 and state.random.random() < state.config.busy_rate

    def _events(self, body: bytes) -> None:
        state, config = self.state, self.state.config
        ok, channel = self._channel()
        if not ok:
            return
        if self._busy():
            retry = config.retry_after
            self._send(*_answer(SERVER_BUSY), headers=(
                [("Retry-After", f"{retry:g}")] if retry is not None else []))
            return
        parsed, problem = _parse_events(body, config.indexes)
        if parsed:
            with state.lock:
                ack_id: Optional[int] = None
                if config.ack and channel is not None and problem is None:
                    ack_id = state.next_ack.get(channel, 0)
                    state.next_ack[channel] = ack_id + 1
                    state.acks.setdefault(channel, {})[ack_id] = time.monotonic()
                for event in parsed:
                    state.events.append(dict(event, channel=channel, ackId=ack_id))
        if problem is not None:
            self._send(*problem)
        elif not parsed:
            self._send(*_answer(NO_DATA))
        elif config.ack and channel is not None:
            self._send(*_answer(SUCCESS, ackId=ack_id))
        else:
            self._send(*_answer(SUCCESS))

    def _acks(self, body: bytes) -> None:
        state, config = self.state, self.state.config
        if not config.ack:
            self._send(*_answer(ACK_DISABLED))
            return
        ok, channel = self._channel()
        if not ok or channel is None:
            return
        try:
            asked = json.loads(body)["acks"]
            ids = [int(i) for i in asked]
        except (ValueError, KeyError, TypeError):
            self._send(*_answer(INVALID_DATA_FORMAT))
            return
        now = time.monotonic()
        with state.lock:
            known = state.acks.get(channel, {})
            answer = {str(i): (not state.held and i in known
                               and now - known[i] >= config.ack_delay) for i in ids}
        self._send(200, {"acks": answer})


def _parse_events(body: bytes, indexes: Sequence[str]) -> Tuple[List[Dict[str, Any]], Optional[
        Tuple[int, Dict[str, Any]]]]:
    """The events of a body, and the answer for the first bad one (the ones before it are
    indexed, as HEC processes a batch in order)."""
    decoder = json.JSONDecoder()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [], _answer(INVALID_DATA_FORMAT, **{"invalid-event-number": 0})
    events: List[Dict[str, Any]] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            return events, None
        number = len(events)
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError:
            return events, _answer(INVALID_DATA_FORMAT, **{"invalid-event-number": number})
        if not isinstance(value, dict):
            return events, _answer(INVALID_DATA_FORMAT, **{"invalid-event-number": number})
        if "event" not in value:
            return events, _answer(EVENT_REQUIRED, **{"invalid-event-number": number})
        if value["event"] in ("", None):
            return events, _answer(EVENT_BLANK, **{"invalid-event-number": number})
        index = value.get("index")
        if index is not None and (not isinstance(index, str) or (indexes and index not in
                                                                  indexes)):
            return events, _answer(INCORRECT_INDEX, **{"invalid-event-number": number})
        fields = value.get("fields")
        if fields is not None and not (isinstance(fields, dict) and all(
                isinstance(v, (str, int, float)) or (isinstance(v, list) and all(
                    isinstance(x, str) for x in v)) for v in fields.values())):
            return events, _answer(INDEXED_FIELDS, **{"invalid-event-number": number})
        events.append(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HecReceiver:
    """A simulated Splunk HEC on its own port, served from a background thread."""

    def __init__(self, config: Optional[HecConfig] = None, **overrides: Any) -> None:
        config = config or HecConfig()
        for name, value in overrides.items():
            setattr(config, name, value)
        config.validate()
        self.config = config
        self._state = _State(config)
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> HecReceiver:
        if self._server is not None:
            return self
        handler = type("HecHandler", (_Handler,), {"state": self._state})
        server = _Server((self.config.host, self.config.port), handler)
        if self.config.tls_cert is not None:
            try:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
                server.socket = context.wrap_socket(server.socket, server_side=True,
                                                    do_handshake_on_connect=False)
            except BaseException:
                server.server_close()
                raise
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="hec-sim",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> HecReceiver:
        return self.start()

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("HEC simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.config.tls_cert is not None else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    def events(self) -> List[Dict[str, Any]]:
        """Every event indexed so far, in order: the posted object plus ``channel`` and
        ``ackId``."""
        with self._state.lock:
            return [dict(event) for event in self._state.events]

    def busy(self, count: int, after: int = 0) -> None:
        """After ``after`` more event posts answered normally, the next ``count`` answer 503
        Server is busy."""
        with self._state.lock:
            self._state.busy_left = count
            self._state.busy_after = after

    def hold_acks(self, held: bool = True) -> None:
        """While held, every acknowledgement reads false (as when indexing lags)."""
        with self._state.lock:
            self._state.held = held

    def set_ack(self, enabled: bool) -> None:
        """Turn indexer acknowledgement on or off (the token's useACK)."""
        self._state.config.ack = enabled

    @property
    def statuses(self) -> Dict[int, int]:
        """How many answers of each HTTP status were sent."""
        with self._state.lock:
            return dict(self._state.statuses)

    @property
    def requests(self) -> int:
        with self._state.lock:
            return self._state.requests
