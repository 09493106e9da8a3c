"""The HTTP side of the simulator: routes, authentication, one handler per phase (post, status,
results, sync), and the faults applied as their data says."""

from __future__ import annotations

import email.utils
import json
import posixpath
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from . import bombs, wire
from . import faults as F
from .config import SimConfig
from .dataset import NOTIFY_INDEXES, NOTIFY_SHARE, Dataset
from .faults import Fault, FaultPlan
from .jobs import DONE, EXPIRED, FETCHED, RUNNING, STALE, Job, JobStore
from .pagefaults import TokenTrail, reshape
from .pages import InvalidToken, PageCache, Result, answer, gzip_bytes
from .query import InvalidInputs, parse_query
from .stats import Stats

_PROXY_HTML = (
    "<html>\r\n<head><title>{0}</title></head>\r\n<body>\r\n<center><h1>{0}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_TITLES = {
    400: "400 Bad Request", 401: "401 Unauthorized", 404: "404 Not Found",
    405: "405 Method Not Allowed", 410: "410 Gone", 429: "429 Too Many Requests",
    500: "500 Internal Server Error", 502: "502 Bad Gateway", 503: "503 Service Unavailable",
    504: "504 Gateway Time-out",
}
# Body modes that replace the whole answer.
_REPLACING = frozenset((F.ERROR_JSON, F.PROXY_HTML, F.DROP, F.RESET, F.ECHO_KEY))
_BOMBS = {F.BOMB_STRING: "string", F.BOMB_WHITESPACE: "whitespace", F.BOMB_NESTING: "nesting"}


class Hub:
    """Everything the request handlers share: configuration, data, jobs, faults, counters."""

    def __init__(self, config: SimConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.jobs = JobStore(config.job_latency, config.result_ttl)
        self.faults = FaultPlan(config.fault_specs(), config.fault_rate, config.seed)
        self.stats = Stats()
        self.cache = PageCache()
        self.trail = TokenTrail()
        self._refused: Set[str] = set(config.refused_shares)
        self._refused_lock = threading.Lock()
        self.connections: Set[socket.socket] = set()
        self.conn_lock = threading.Lock()

    def refuse_key(self, share_id: str, refused: bool = True) -> None:
        """Make share ``share_id`` answer 401 to the right key (or stop doing so)."""
        with self._refused_lock:
            if refused:
                self._refused.add(share_id)
            else:
                self._refused.discard(share_id)

    def refuses(self, share_id: str) -> bool:
        with self._refused_lock:
            return share_id in self._refused

    def retry_after(self) -> str:
        """The Retry-After value: whole seconds as an integer, else a decimal."""
        value = self.config.retry_after
        return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


class _Route:
    def __init__(self, phase: str, share_id: str = "", index: Optional[str] = None,
                 count: bool = False, jid: str = "") -> None:
        self.phase = phase
        self.share_id = share_id
        self.index = index
        self.count = count
        self.jid = jid


def route(path: str) -> _Route:
    """What a request path asks for. Phases: post, status, results, sync, other."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    parts = [unquote(p) for p in path.split("/")]
    if len(parts) < 3 or parts[0] != "" or parts[1] != "shares":
        return _Route("other")
    rest = parts[2:]
    phase = "sync"
    if rest[:2] == ["v2", "async"]:
        phase, rest = "post", rest[2:]
    elif rest[0] == "v2" and len(rest) > 1:
        rest = rest[1:]
    if not rest or not rest[0]:
        return _Route("other")
    share_id, rest = rest[0], rest[1:]
    if phase == "post" and len(rest) == 2 and rest[0] in ("jobs", "results"):
        return _Route("status" if rest[0] == "jobs" else "results", share_id, jid=rest[1])
    count = bool(rest) and rest[-1] == "count"
    if count:
        rest = rest[:-1]
    if not rest:
        return _Route(phase, share_id, None, count)
    if len(rest) == 1 and rest[0].isdigit():
        return _Route(phase, share_id, rest[0], count)
    return _Route("other")


class Handler(BaseHTTPRequestHandler):
    """One connection to the simulated hub (HTTP/1.1, kept alive)."""

    protocol_version = "HTTP/1.1"
    server_version = "ArcticHubSim/1.0"
    timeout = 120
    server: SimServer

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def hub(self) -> Hub:
        return self.server.hub

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        with self.hub.conn_lock:
            self.hub.connections.add(self.connection)
        self.hub.stats.connection()

    def finish(self) -> None:
        with self.hub.conn_lock:
            self.hub.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.hub.config.log:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self.hub.stats.status(code)
        super().send_response(code, message)

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def _send(self, code: int, body: bytes = b"", headers: Optional[List[Tuple[str, str]]] = None,
              content_type: str = "application/json") -> None:
        self.send_response(code)
        if body or code not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers or ():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, code: int, data: Any, headers: Optional[List[Tuple[str, str]]] = None) -> None:
        self._send(code, json.dumps(data).encode(), headers)

    def _error(self, code: int, description: str = "",
               headers: Optional[List[Tuple[str, str]]] = None) -> None:
        data: Dict[str, Any] = {"title": _TITLES.get(code, str(code))}
        if description:
            data["description"] = description
        self._json(code, data, headers)

    def _read_body(self) -> None:
        """Read (and ignore) a request body, so the connection can be reused."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                self.rfile.read(size + 2)
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            got = self.rfile.read(min(length, 65536))
            if not got:
                break
            length -= len(got)

    def _accepts_gzip(self) -> bool:
        for item in self.headers.get("Accept-Encoding", "").split(","):
            coding, _, params = item.strip().partition(";")
            if coding.strip().lower() in ("gzip", "x-gzip", "*"):
                q = params.strip().replace(" ", "")
                return q not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
        return False

    def _location(self, target: str) -> str:
        if not self.hub.config.relative_locations:
            return target
        base = urlsplit(self.path).path
        rel = posixpath.relpath(target, posixpath.dirname(base) or "/")
        return rel if ":" not in rel.split("/")[0] else "./" + rel

    # -- dispatch: one handler per phase --------------------------------------------------------

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        r = route(url.path)
        self.hub.stats.request(r.phase)
        handlers = {"post": self._post, "status": self._status, "results": self._results,
                    "sync": self._sync}
        try:
            self._read_body()
            handler = handlers.get(r.phase)
            if handler is None:
                self._error(404, "No such resource")
            else:
                handler(method, r, params)
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def _target(self, r: _Route) -> Optional[str]:
        if r.index is None and self.hub.dataset.is_api_share(r.share_id):
            return r.share_id
        if r.share_id == NOTIFY_SHARE and r.index in NOTIFY_INDEXES:
            return f"{NOTIFY_SHARE}/{r.index}"
        return None

    def _key_from_header(self) -> Optional[str]:
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, key = value.strip().partition(" ")
        return key.strip() if scheme.lower() == "token" else ""

    def _authorized(self, key: Optional[str], share_id: str) -> bool:
        """Check the key; answer 401 (and return False) when it is missing or refused."""
        challenge = [("WWW-Authenticate", 'Token realm="Arctic Hub"')]
        if key != self.hub.config.apikey or self.hub.refuses(share_id):
            self._error(401, "Missing API key" if key is None else "Invalid API key", challenge)
            return False
        fault = self._draw("auth")
        if fault is not None:
            self._fault_answer(fault, key=key)
            return False
        return True

    def _async_request(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> bool:
        """The checks every async request passes first: method, key, and (for status and results
        URLs) no parameters. False when an error answer went out."""
        want = "POST" if r.phase == "post" else "GET"
        if method != want:
            self._error(405, f"Use {want}", [("Allow", want)])
            return False
        if not self._authorized(self._key_from_header(), r.share_id):
            return False
        if r.phase != "post" and params:
            names = list(dict.fromkeys(name for name, _ in params))
            self._json(400, InvalidInputs(
                [{"key": n, "type": "query validation", "message": f"Unknown parameter: {n}"}
                 for n in names]).body())
            return False
        return True

    def _job(self, r: _Route) -> Optional[Job]:
        job = self.hub.jobs.get(r.share_id, r.jid)
        if job is None:
            self._error(404, "Job not found")
        return job

    # -- the phases -----------------------------------------------------------------------------

    def _post(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        if not self._async_request(method, r, params):
            return
        target = self._target(r)
        if target is None:
            self._error(404, "Share not found")
            return
        hub = self.hub
        try:
            query = parse_query(params, now=time.time(), notification=r.index is not None,
                                count=r.count)
        except InvalidInputs as exc:
            self._json(400, exc.body())
            return
        fault = self._draw("post")
        if fault is not None and self._fault_answer(fault):
            return
        job = hub.jobs.create(r.share_id, target, query, time.time())
        status = f"/shares/v2/async/{r.share_id}/jobs/{job.jid}"
        self._json(202, {"title": "202 Accepted", "job": job.jid},
                   [("Location", self._location(status))])
        self._after_success()

    def _status(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        if not self._async_request(method, r, params):
            return
        job = self._job(r)
        if job is None:
            return
        state = job.state(time.time())
        if state == EXPIRED:
            self._error(410, "Job expired", [("X-STATUS", "Job expired")])
            return
        if state == STALE:
            self._error(410, "Job no longer exists")
            return
        fault = self._draw("status", lambda f: f.status != 303 or state != RUNNING)
        if fault is not None:
            self._job_effect(job, fault)
            if self._fault_answer(fault):
                return
        own = f"/shares/v2/async/{job.share_id}/jobs/{job.jid}"
        if job.state(time.time()) == RUNNING or (fault is not None and fault.status == 202):
            headers = [("Location", self._location(own))]
            modes = fault.headers if fault is not None else ()
            if F.RETRY_AFTER_DATE in modes:
                date = email.utils.formatdate(time.time() + 1, usegmt=True)
                headers.append(("Retry-After", date))
            elif F.NO_RETRY_AFTER not in modes:
                headers.append(("Retry-After", self.hub.retry_after()))
            self._json(202, {"title": "202 Accepted", "status": "running"}, headers)
        else:
            code = fault.status if fault is not None and fault.status is not None else 302
            results = f"/shares/v2/async/{job.share_id}/results/{job.jid}"
            self._json(code, {"title": _TITLES.get(code, str(code)), "status": "done"},
                       [("Location", self._location(results))])
        self._after_success()

    def _results(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        if not self._async_request(method, r, params):
            return
        job = self._job(r)
        if job is None:
            return
        hub = self.hub
        now = time.time()
        state = job.state(now)
        if state != DONE:
            self._job_state_answer(state)
            return
        gzip = self._accepts_gzip()
        share = hub.dataset.share(job.target)
        try:
            result = answer(share, job.query, page_max=hub.config.page_max, now=now, gzip=gzip,
                            cache=hub.cache)
        except InvalidToken as exc:
            if hub.jobs.claim(job, now) == DONE:
                self._json(400, exc.body())
            else:
                self._job_state_answer(job.state(now))
            return

        def usable(fault: Fault) -> bool:
            if fault.gzip_only and not gzip:
                return False
            if fault.tokens == F.TOKEN_CYCLE:
                return hub.trail.previous(job.share_id, job.query.token) is not None
            return not fault.tokens or not job.query.count

        fault = self._draw("results", usable)
        if fault is not None and fault.job != F.CONSUME:
            self._job_effect(job, fault)
            self._fault_answer(fault)
            return  # transient (the results stay fetchable), or the job is gone
        claimed = hub.jobs.claim(job, now)
        if claimed != DONE:
            self._job_state_answer(claimed)
            return
        if fault is not None and self._fault_answer(fault):
            return  # e.g. results-410 or results-drop: the job is consumed
        if fault is not None and fault.tokens:
            result = reshape(fault, result, share=share, share_id=job.share_id, query=job.query,
                             trail=hub.trail, page_max=hub.config.page_max, now=now, gzip=gzip,
                             cache=hub.cache)
        else:
            hub.trail.record(job.share_id, job.query.token, result)
        self._send_result(result, fault)
        if fault is None:
            self._after_success()

    def _sync(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        if method != "GET":
            self._error(405, "Use GET", [("Allow", "GET")])
            return
        keys = [v for k, v in params if k == "apikey"]
        if not self._authorized(keys[0] if len(keys) == 1 else self._key_from_header(),
                                r.share_id):
            return
        target = self._target(r)
        if target is None:
            self._error(404, "Share not found")
            return
        now = time.time()
        try:
            query = parse_query(params, now=now, notification=r.index is not None, count=r.count,
                                ignore=("apikey",))
            result = answer(self.hub.dataset.share(target), query,
                            page_max=self.hub.config.page_max, now=now,
                            gzip=self._accepts_gzip(), cache=self.hub.cache)
        except InvalidInputs as exc:
            self._json(400, exc.body())
            return
        except InvalidToken as exc:
            self._json(400, exc.body())
            return
        self._send_result(result, None)
        self._after_success()

    def _job_state_answer(self, state: str) -> None:
        if state == EXPIRED:
            self._error(410, "Job expired", [("X-STATUS", "Job expired")])
        elif state == FETCHED:
            self._error(410, "Results already fetched")
        elif state == RUNNING:
            self._error(404, "Job not finished")
        else:
            self._error(404, "Job not found")

    # -- faults, as their data says -------------------------------------------------------------

    def _after_success(self) -> None:
        """A normal answer went out: maybe drop the kept-alive connection silently."""
        fault = self._draw("any")
        if fault is not None and fault.close:
            self.close_connection = True

    def _draw(self, phase: str, usable: Optional[Callable[[Fault], bool]] = None
              ) -> Optional[Fault]:
        plan = self.hub.faults
        fault = plan.draw(phase, usable) if usable is not None else plan.draw(phase)
        if fault is not None:
            self.hub.stats.fault(fault.name)
        return fault

    def _job_effect(self, job: Job, fault: Fault) -> None:
        """Make a fault's effect on the job true (consuming is the results handler's claim)."""
        if fault.job == F.REMOVE:
            self.hub.jobs.remove(job)
        elif fault.job == F.STALE:
            job.stale = True
        elif fault.job == F.EXPIRE:
            job.expired = True
        elif fault.job == F.PIN_PENDING:
            job.pending_forever = True

    def _fault_answer(self, fault: Fault, key: Optional[str] = None) -> bool:
        """Wait if the fault delays, then answer in its place when it replaces the whole answer;
        False when the normal answer (perhaps reshaped) is still to be sent."""
        if fault.delay:
            time.sleep(self.hub.config.fault_delay)
        if fault.body not in _REPLACING:
            return False
        if fault.body in (F.DROP, F.RESET):
            if fault.body == F.RESET:
                wire.reset(self.connection)
            self.close_connection = True
            return True
        code = fault.status or 500
        headers: List[Tuple[str, str]] = []
        if F.RETRY_AFTER in fault.headers:
            headers.append(("Retry-After", self.hub.retry_after()))
        if F.RETRY_AFTER_DATE in fault.headers:
            headers.append(("Retry-After", email.utils.formatdate(time.time() + 1, usegmt=True)))
        if F.X_STATUS_EXPIRED in fault.headers:
            headers.append(("X-STATUS", "Job expired"))
        if fault.body == F.PROXY_HTML:
            html = _PROXY_HTML.format(_TITLES[code]).encode()
            self._send(code, html, content_type="text/html")
        elif fault.body == F.ECHO_KEY:
            headers.append(("WWW-Authenticate", 'Token realm="Arctic Hub"'))
            self._error(code, f"Invalid API key: {key}", headers)
        else:
            self._error(code, fault.message, headers)
        return True

    def _send_result(self, result: Result, fault: Optional[Fault]) -> None:
        mode = fault.body if fault is not None else F.NORMAL
        modes = fault.headers if fault is not None else ()
        body = result.body
        gzipped = result.gzipped
        if mode == F.IDENTITY and gzipped:
            body, gzipped = wire.gunzip(body), False
        elif mode == F.BAD_GZIP:
            body = wire.corrupt_gzip(body)
        elif mode == F.BAD_JSON:
            raw = wire.cut_json(wire.gunzip(body) if gzipped else body)
            body = gzip_bytes(raw) if gzipped else raw
        elif mode == F.EMPTY:
            body, gzipped = b"", False
        elif mode == F.TRICKLE_FOREVER:
            body, gzipped = wire.array_start(wire.gunzip(body) if gzipped else body), False
        elif mode in _BOMBS:
            body, gzipped = bombs.bomb(_BOMBS[mode]), True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if F.CHUNKED in modes:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        for name, value in result.headers:
            if mode not in _BOMBS or name == "X-Last-Inserted-Token":
                self.send_header(name, value)
        self.end_headers()
        out = self.wfile
        half = len(body) // 2
        if mode == F.TRICKLE_FOREVER:
            wire.write_chunk(out, body)
            delay = max(self.hub.config.fault_delay, wire.MIN_TRICKLE_PAUSE)
            while not wire.peer_gone(self.connection, delay):
                wire.write_chunk(out, b" ")
            self.close_connection = True
        elif F.CHUNKED in modes:
            wire.write_chunked(out, body)
        elif mode == F.TRICKLE:
            wire.write_trickle(out, body, self.hub.config.fault_delay)
        elif mode in (F.HALF_FIN, F.HALF_RESET, F.HALF_STALL):
            out.write(body[:half])
            if mode == F.HALF_STALL:
                time.sleep(self.hub.config.fault_delay)
            if mode == F.HALF_RESET:
                wire.reset(self.connection)
            self.close_connection = True
        else:
            out.write(body)


class SimServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the Hub."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], hub: Hub) -> None:
        self.hub = hub
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut every open client connection (their handler threads then finish)."""
        with self.hub.conn_lock:
            conns = list(self.hub.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
