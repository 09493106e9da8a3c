"""An Arctic Hub in memory, behind a transport that opens no socket, and a clock that only moves
when slept on: for testing the orchestration (job, session, pipeline, download) without a network.

    hub = MemoryHub(events=25, page_max=10)
    hub.faults["status"] = [reply(503, Retry_After="2")]     # the next status answer, once
    session = HubSession(hub.transport(), clock=hub.clock)
"""

from __future__ import annotations

import gzip
import json
import threading
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

from hubasync.errors import BadBody, NetworkError

BASE = "https://hub.test"
SHARE = "/shares/v2/async/demo"
URL = BASE + SHARE


class FakeClock:
    """Monotonic time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.slept: List[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.time += max(0.0, seconds)


class Stall:
    """A body's chunk that is real silence: up to ``seconds`` of real time, cut short (with a
    NetworkError) when the reader abandons the body, as closing a socket would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


# a float: the fake clock moves on by that much; a Stall: real time passes
Chunk = Union[bytes, BaseException, float, Stall]


@dataclass
class Reply:
    status: int
    headers: Dict[str, str] = field(default_factory=dict)
    body: List[Chunk] = field(default_factory=list)


def reply(status: int, *chunks: Chunk, **headers: str) -> Reply:
    """An answer; header names use ``_`` for ``-``; a chunk may be an exception to raise."""
    return Reply(status, {k.replace("_", "-"): v for k, v in headers.items()}, list(chunks))


class _Response:
    def __init__(self, url: str, answer: Reply, clock: FakeClock) -> None:
        self._clock = clock
        self.url = url
        self.status = answer.status
        self._headers = {k.lower(): v for k, v in answer.headers.items()}
        self._body = answer.body
        self.abandoned = False
        self._gone = threading.Event()

    def header(self, name: str) -> Optional[str]:
        return self._headers.get(name.lower())

    def chunks(self) -> Iterator[bytes]:
        for chunk in self._body:
            if isinstance(chunk, BaseException):
                raise chunk
            if isinstance(chunk, float):
                self._clock.sleep(chunk)
                continue
            if isinstance(chunk, Stall):
                if self._gone.wait(chunk.seconds):
                    raise NetworkError("the body was abandoned")
                continue
            yield chunk

    def read_small(self, limit: int) -> bytes:
        data = b"".join(list(self.chunks()))
        if len(data) > limit:
            raise BadBody("answer too large")
        return data

    def abandon(self) -> None:
        self.abandoned = True
        self._gone.set()


class _Sent:
    def __init__(self, hub: MemoryHub, method: str, url: str) -> None:
        self.sent_at = hub.clock.now()
        self.cancelled = False
        self._hub, self._method, self._url = hub, method, url

    def ready(self, timeout: float) -> bool:
        return True

    def response(self) -> _Response:
        answer = self._hub.answer(self._method, self._url)
        if isinstance(answer, BaseException):
            raise answer
        return _Response(self._url, answer, self._hub.clock)

    def cancel(self) -> None:
        self.cancelled = True
        self._hub.cancelled.append(self._url)


class MemoryTransport:
    def __init__(self, hub: MemoryHub) -> None:
        self.hub = hub
        self.closed = False
        self.aborted = False

    def send(self, method: str, url: str) -> _Sent:
        self.hub.sent.append((method, url))
        failure = self.hub.pop_fault("send")
        if isinstance(failure, BaseException):
            raise failure
        return _Sent(self.hub, method, url)

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True


class MemoryHub:
    """A share of ``events`` events served ``page_max`` a page, in insertion order.

    Tokens are ``t<N>``: continue after event N. Jobs are done after ``latency`` seconds of the
    fake clock. ``faults[phase]`` (phase: send, post, status, results) holds answers (or
    exceptions) used, in order, instead of the normal ones; None in the list: answer normally.
    """

    def __init__(self, events: int = 25, page_max: int = 10, latency: float = 0.0,
                 gzip_bodies: bool = True) -> None:
        self.clock = FakeClock()
        self.events = [{"n": i, "observation time": f"2020-01-01 00:00:{i % 60:02d}Z"}
                       for i in range(events)]
        self.page_max = page_max
        self.latency = latency
        self.gzip_bodies = gzip_bodies
        self.faults: Dict[str, List[Union[Reply, BaseException, None]]] = {}
        self.sent: List[Tuple[str, str]] = []
        self.cancelled: List[str] = []
        self.jobs: Dict[str, Tuple[float, Dict[str, str], bool]] = {}
        self.page_hook: Optional[Callable[[Dict[str, str]], Optional[Reply]]] = None

    def transport(self) -> MemoryTransport:
        return MemoryTransport(self)

    def pop_fault(self, phase: str) -> Optional[Union[Reply, BaseException]]:
        queue = self.faults.get(phase)
        return queue.pop(0) if queue else None

    def requests(self, method: str, part: str = "") -> List[str]:
        return [url for m, url in self.sent if m == method and part in url]

    def answer(self, method: str, url: str) -> Union[Reply, BaseException]:
        parts = urlsplit(url)
        path = parts.path
        if method == "POST":
            fault = self.pop_fault("post")
            if fault is not None:
                return fault
            jid = f"j{len(self.jobs) + 1}"
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if path.endswith("/count"):
                query["count"] = "1"
            self.jobs[jid] = (self.clock.now() + self.latency, query, False)
            return reply(202, Location=f"{SHARE}/jobs/{jid}")
        jid = path.rsplit("/", 1)[1]
        if "/jobs/" in path:
            fault = self.pop_fault("status")
            if fault is not None:
                return fault
            ready_at, _, _ = self.jobs[jid]
            if self.clock.now() < ready_at:
                return reply(202, Location=f"{SHARE}/jobs/{jid}", Retry_After="1")
            return reply(302, Location=f"{SHARE}/results/{jid}")
        fault = self.pop_fault("results")
        if fault is not None:
            return fault
        ready_at, query, fetched = self.jobs[jid]
        if fetched:
            return reply(410, b'{"title": "410 Gone"}')
        self.jobs[jid] = (ready_at, query, True)
        if self.page_hook is not None:
            hooked = self.page_hook(query)
            if hooked is not None:
                return hooked
        return self.page(query)

    def page(self, query: Dict[str, str]) -> Reply:
        if url_is_count(query):
            return reply(200, json.dumps({"count": len(self.events)}).encode())
        token = query.get("token")
        if token is not None and not token.startswith("t"):
            return reply(400, json.dumps({"title": "400 Bad Request", "errors": [
                {"type": "storage", "key": "token", "message": f"Invalid token: {token}"}]}
            ).encode())
        start = int(token[1:]) if token else 0
        size = min(int(query.get("limit", self.page_max)), self.page_max)
        chosen = self.events[start:start + size]
        end = start + len(chosen)
        headers = {"X-Last-Inserted-Token": f"t{len(self.events)}"}
        if end < len(self.events):
            headers["X-Next-Token"] = f"t{end}"
        body = json.dumps(chosen).encode()
        if self.gzip_bodies:
            headers["Content-Encoding"] = "gzip"
            body = gzip.compress(body)
        return Reply(200, headers, [body[: len(body) // 2], body[len(body) // 2:]])


def url_is_count(query: Dict[str, str]) -> bool:
    return query.get("count") == "1"


def network_error(text: str = "connection reset") -> NetworkError:
    return NetworkError(text)
