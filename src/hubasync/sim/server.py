"""The HTTP side of the simulator: routes, authentication, the three-phase job, faults applied."""

from __future__ import annotations

import email.utils
import json
import posixpath
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

from . import wire
from .config import SimConfig
from .dataset import API_SHARE, NOTIFY_INDEXES, NOTIFY_SHARE, Dataset
from .faults import FaultPlan
from .jobs import DONE, EXPIRED, FETCHED, RUNNING, STALE, Job, JobStore
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


_UNCLAIMED = frozenset(
    f"results-{kind}" for kind in ("500", "502", "503", "504", "429", "404", "expired")
)


class Hub:
    """Everything the request handlers share: configuration, data, jobs, faults, counters."""

    def __init__(self, config: SimConfig, dataset: Dataset) -> None:
        self.config = config
        self.dataset = dataset
        self.jobs = JobStore(config.job_latency, config.result_ttl)
        self.faults = FaultPlan(config.fault_specs(), config.fault_rate, config.seed)
        self.stats = Stats()
        self.cache = PageCache()
        self.connections: Set[socket.socket] = set()
        self.conn_lock = threading.Lock()

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

    # -- dispatch -------------------------------------------------------------------------------

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        r = route(url.path)
        self.hub.stats.request(r.phase)
        try:
            self._read_body()
            if r.phase == "other":
                self._error(404, "No such resource")
            elif r.phase == "sync":
                self._sync(method, r, params)
            else:
                self._async(method, r, params)
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def _target(self, r: _Route) -> Optional[str]:
        if r.share_id == API_SHARE and r.index is None:
            return API_SHARE
        if r.share_id == NOTIFY_SHARE and r.index in NOTIFY_INDEXES:
            return f"{NOTIFY_SHARE}/{r.index}"
        return None

    def _key_from_header(self) -> Optional[str]:
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, key = value.strip().partition(" ")
        return key.strip() if scheme.lower() == "token" else ""

    def _unauthorized(self, key: Optional[str]) -> bool:
        if key == self.hub.config.apikey:
            return False
        self._error(401, "Missing API key" if key is None else "Invalid API key",
                    [("WWW-Authenticate", 'Token realm="Arctic Hub"')])
        return True

    def _async(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        want = "POST" if r.phase == "post" else "GET"
        if method != want:
            self._error(405, f"Use {want}", [("Allow", want)])
            return
        if self._unauthorized(self._key_from_header()):
            return
        if r.phase == "post":
            self._post(r, params)
            return
        if params:
            names = list(dict.fromkeys(name for name, _ in params))
            self._json(400, InvalidInputs(
                [{"key": n, "type": "query validation", "message": f"Unknown parameter: {n}"}
                 for n in names]).body())
            return
        job = self.hub.jobs.get(r.share_id, r.jid)
        if job is None:
            self._error(404, "Job not found")
        elif r.phase == "status":
            self._status(job)
        else:
            self._results(job)

    # -- the three phases -----------------------------------------------------------------------

    def _post(self, r: _Route, params: List[Tuple[str, str]]) -> None:
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
        if self._fault_answer(self._draw("post")):
            return
        job = hub.jobs.create(r.share_id, target, query, time.time())
        status = f"/shares/v2/async/{r.share_id}/jobs/{job.jid}"
        self._json(202, {"title": "202 Accepted", "job": job.jid},
                   [("Location", self._location(status))])
        self._after_success()

    def _status(self, job: Job) -> None:
        state = job.state(time.time())
        if state == EXPIRED:
            self._error(410, "Job expired", [("X-STATUS", "Job expired")])
            return
        if state == STALE:
            self._error(410, "Job no longer exists")
            return
        fault = self._draw("status")
        if fault in ("status-404", "status-410", "status-expired"):
            self._job_fault(job, fault)
        if self._fault_answer(fault):
            return
        own = f"/shares/v2/async/{job.share_id}/jobs/{job.jid}"
        if state == RUNNING or fault in ("status-no-retry-after", "status-retry-after-date"):
            headers = [("Location", self._location(own))]
            if fault == "status-retry-after-date":
                date = email.utils.formatdate(time.time() + 1, usegmt=True)
                headers.append(("Retry-After", date))
            elif fault != "status-no-retry-after":
                headers.append(("Retry-After", self.hub.retry_after()))
            self._json(202, {"title": "202 Accepted", "status": "running"}, headers)
        else:
            results = f"/shares/v2/async/{job.share_id}/results/{job.jid}"
            self._json(302, {"title": "302 Found", "status": "done"},
                       [("Location", self._location(results))])
        self._after_success()

    def _results(self, job: Job) -> None:
        hub = self.hub
        now = time.time()
        state = job.state(now)
        if state != DONE:
            self._job_state_answer(state)
            return
        gzip = self._accepts_gzip()
        try:
            result = answer(hub.dataset.share(job.target), job.query,
                            page_max=hub.config.page_max, now=now, gzip=gzip, cache=hub.cache)
        except InvalidToken as exc:
            if hub.jobs.claim(job, now) == DONE:
                self._json(400, exc.body())
            else:
                self._job_state_answer(job.state(now))
            return

        def usable(name: str) -> bool:
            return gzip or name not in ("results-bad-gzip", "results-no-gzip")

        fault = self._draw("results", usable)
        if fault in ("results-404", "results-expired"):
            self._job_fault(job, fault)
        if fault in _UNCLAIMED:
            self._fault_answer(fault)
            return  # transient (the results stay fetchable), or the job is gone
        claimed = hub.jobs.claim(job, now)
        if claimed != DONE:
            self._job_state_answer(claimed)
            return
        if fault is not None and self._fault_answer(fault):
            return  # e.g. results-410 or results-drop: the job is consumed
        self._send_result(result, fault)
        if fault is None:
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

    def _job_fault(self, job: Job, fault: str) -> None:
        """Make a job-state fault true: the job vanishes, goes stale, expires or is consumed."""
        if fault.endswith("-404"):
            self.hub.jobs.remove(job)
        elif fault == "status-410":
            job.stale = True
        elif fault.endswith("-expired"):
            job.expired = True

    def _sync(self, method: str, r: _Route, params: List[Tuple[str, str]]) -> None:
        if method != "GET":
            self._error(405, "Use GET", [("Allow", "GET")])
            return
        keys = [v for k, v in params if k == "apikey"]
        if self._unauthorized(keys[0] if len(keys) == 1 else self._key_from_header()):
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

    # -- answers and faults ---------------------------------------------------------------------

    def _after_success(self) -> None:
        """A normal answer went out: maybe drop the kept-alive connection silently."""
        if self._draw("any") is not None:
            self.close_connection = True

    def _draw(self, phase: str, usable: Any = None) -> Optional[str]:
        fault = self.hub.faults.draw(phase, usable) if usable else self.hub.faults.draw(phase)
        if fault is not None:
            self.hub.stats.fault(fault)
        return fault

    def _fault_answer(self, fault: Optional[str]) -> bool:
        """Answer with a fault that replaces the whole response; False if it does not (a slow
        fault waits first; body faults act while sending)."""
        if fault is None:
            return False
        hub = self.hub
        kind = fault.split("-", 1)[1]
        retry = [("Retry-After", hub.retry_after())]
        if kind == "slow":
            time.sleep(hub.config.fault_delay)
            return False
        if fault == "results-410":
            self._error(410, "Results already fetched")
        elif kind in ("drop", "reset") and fault != "results-reset":
            if kind == "reset":
                wire.reset(self.connection)
            self.close_connection = True
        elif kind in ("502", "504"):
            html = _PROXY_HTML.format(_TITLES[int(kind)]).encode()
            self._send(int(kind), html, content_type="text/html")
        elif kind == "503":
            self._error(503, "Service temporarily unavailable", retry)
        elif kind == "503-date":
            date = email.utils.formatdate(time.time() + 1, usegmt=True)
            self._error(503, "Service temporarily unavailable", [("Retry-After", date)])
        elif kind == "429":
            self._error(429, "Rate limit exceeded", retry)
        elif kind == "500":
            self._error(500, "Internal error")
        elif kind == "404":
            self._error(404, "Job not found")
        elif kind == "410":
            self._error(410, "Job no longer exists")
        elif kind == "expired":
            self._error(410, "Job expired", [("X-STATUS", "Job expired")])
        else:
            return False
        return True

    def _send_result(self, result: Result, fault: Optional[str]) -> None:
        body = result.body
        gzipped = result.gzipped
        if fault == "results-no-gzip" and gzipped:
            body, gzipped = wire.gunzip(body), False
        elif fault == "results-bad-gzip":
            body = wire.corrupt_gzip(body)
        elif fault == "results-bad-json":
            raw = wire.cut_json(wire.gunzip(body) if gzipped else body)
            body = gzip_bytes(raw) if gzipped else raw
        elif fault == "results-empty":
            body, gzipped = b"", False
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if fault == "results-chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        for name, value in result.headers:
            self.send_header(name, value)
        self.end_headers()
        out = self.wfile
        half = len(body) // 2
        if fault == "results-chunked":
            wire.write_chunked(out, body)
        elif fault == "results-trickle":
            wire.write_trickle(out, body, self.hub.config.fault_delay)
        elif fault in ("results-truncated", "results-reset", "results-stall"):
            out.write(body[:half])
            if fault == "results-stall":
                time.sleep(self.hub.config.fault_delay)
            if fault == "results-reset":
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
