"""Test helpers for the simulator's own tests: a tiny http.client hub client (fixture ``hub``)."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlencode, urljoin, urlsplit

import pytest

from hubasync.sim import Simulator

Params = Sequence[Tuple[str, Any]]


@dataclass
class Resp:
    status: int
    headers: Dict[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> Optional[str]:
        return self.headers.get(name.lower())


class HubHTTP:
    """Speaks to a simulator over real sockets with http.client (one kept-alive connection)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conn: Optional[http.client.HTTPConnection] = None

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.sim.port, timeout=10)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, params: Params = (), *, key: Optional[str] = "",
                gzip_ok: bool = True, headers: Optional[Dict[str, str]] = None) -> Resp:
        """One request; ``key=""`` sends the simulator's key, None sends none."""
        target = path + ("?" + urlencode(list(params)) if params else "")
        hdrs = {"Accept": "application/json"}
        if gzip_ok:
            hdrs["Accept-Encoding"] = "gzip"
        if key is not None:
            hdrs["Authorization"] = f"token {key or self.sim.apikey}"
        hdrs.update(headers or {})
        conn = self._connection()
        try:
            conn.request(method, target, headers=hdrs)
            resp = conn.getresponse()
            body = resp.read()
        except Exception:
            self.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        if resp.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return Resp(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body,
                    self.sim.url + target)

    def post(self, path: str, params: Params = (), **kw: Any) -> Resp:
        return self.request("POST", path, params, **kw)

    def get_url(self, url: str, **kw: Any) -> Resp:
        parts = urlsplit(url)
        path = parts.path + ("?" + parts.query if parts.query else "")
        return self.request("GET", path, **kw)

    def wait_done(self, status_url: str, timeout: float = 10) -> Resp:
        """Poll a status URL until it stops answering 202."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.get_url(status_url)
            if resp.status != 202 or time.monotonic() > deadline:
                return resp
            time.sleep(0.01)

    def run(self, path: str, params: Params = (), **kw: Any) -> Resp:
        """The three phases: POST, poll, fetch. Locations resolve against the request URL."""
        posted = self.post(path, params, **kw)
        assert posted.status == 202, (posted.status, posted.body)
        status_url = urljoin(posted.url, posted.header("Location") or "")
        done = self.wait_done(status_url)
        assert done.status == 302, (done.status, done.body)
        return self.get_url(urljoin(done.url, done.header("Location") or ""), **kw)

    def fetch_all(self, path: str, params: Params = (), **kw: Any) -> Tuple[List[Any], List[Resp]]:
        """Every page of a query, following X-Next-Token."""
        events: List[Any] = []
        pages: List[Resp] = []
        token: Optional[str] = dict(params).get("token")
        rest = [(k, v) for k, v in params if k != "token"]
        while True:
            extra = [("token", token)] if token else []
            resp = self.run(path, rest + extra, **kw)
            assert resp.status == 200, (resp.status, resp.body)
            pages.append(resp)
            events.extend(resp.json())
            token = resp.header("X-Next-Token")
            if token is None:
                return events, pages


@pytest.fixture
def hub(sim: Simulator) -> Any:
    """An HTTP helper bound to the default ``sim``."""
    client = HubHTTP(sim)
    yield client
    client.close()


@pytest.fixture
def hub_for() -> Any:
    """``hub_for(sim)``: an HTTP helper for a simulator made with ``make_sim``."""
    made: List[HubHTTP] = []

    def factory(sim: Simulator) -> HubHTTP:
        client = HubHTTP(sim)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


HubFactory = Callable[[Simulator], HubHTTP]
