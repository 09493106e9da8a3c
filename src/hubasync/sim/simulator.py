"""The simulator as an object: build the data, serve from a background thread, stop cleanly."""

from __future__ import annotations

import dataclasses
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Dict, List, Optional, Type

from .config import SimConfig
from .dataset import Dataset
from .server import Hub, SimServer
from .stats import Stats


class Simulator:
    """A local Arctic Hub. ``with Simulator(SimConfig(port=0)) as sim: sim.url ...``.

    Keyword arguments override fields of ``config`` (``Simulator(events=10, port=0)``).
    """

    def __init__(self, config: Optional[SimConfig] = None, **overrides: Any) -> None:
        config = dataclasses.replace(config or SimConfig(), **overrides)
        config.validate()
        self.config = config
        self.dataset = Dataset(seed=config.seed, events=config.events, data=config.data,
                               event_size=config.event_size, shares=config.shares)
        self.hub = Hub(config, self.dataset)
        self._server: Optional[SimServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._growth_stopped = threading.Event()
        self._grower: Optional[threading.Thread] = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in a background thread (idempotent)."""
        if self._server is not None:
            return self
        server = SimServer((self.config.host, self.config.port), self.hub)
        if self.config.tls_cert is not None:
            try:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
                # The handshake happens in each connection's thread, not in the accept loop.
                server.socket = context.wrap_socket(server.socket, server_side=True,
                                                    do_handshake_on_connect=False)
            except BaseException:
                server.server_close()
                raise
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="hubasync-sim", daemon=True,
        )
        self._thread.start()
        if self.config.grow > 0:
            self._grower = threading.Thread(target=self._grow, name="hubasync-sim-grow",
                                            daemon=True)
            self._grower.start()
        return self

    def stop(self) -> None:
        """Stop serving, close client connections, join the threads (idempotent)."""
        server = self._server
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        for thread in (self._thread, self._grower):
            if thread is not None:
                thread.join(timeout=5)
        self._server = self._thread = self._grower = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.stop()

    def serve_until_stopped(self) -> None:
        """Block until ``stop()`` is called (from another thread or a signal handler)."""
        while not self._stop.wait(0.5):
            pass

    def _grow(self) -> None:
        owed = 0.0
        last = time.monotonic()
        while not self._stop.wait(0.1):
            if self._growth_stopped.is_set():
                return
            now = time.monotonic()
            owed += (now - last) * self.config.grow
            last = now
            if owed >= 1:
                for name in self.dataset.api_shares:
                    self.dataset.append(name, int(owed))
                owed -= int(owed)

    # -- what tests and benchmarks use ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when the config asked for 0)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080`` (https when serving TLS)."""
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        elif host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        scheme = "https" if self.config.tls_cert is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def apikey(self) -> str:
        return self.config.apikey

    @property
    def stats(self) -> Stats:
        """Thread-safe counters (see ``Stats``)."""
        return self.hub.stats

    def share_url(self, share: str = "demo", *, count: bool = False, sync: bool = False) -> str:
        """The URL of a share (``demo``, ``sK`` or ``notify/0``): async by default, or the sync
        one with ``?apikey=``."""
        path = f"/shares/v2/{share}" if sync else f"/shares/v2/async/{share}"
        if count:
            path += "/count"
        if sync:
            path += f"?apikey={self.apikey}"
        return self.url + path

    def share_events(self, share: str = "demo") -> List[Dict[str, Any]]:
        """The share's events (``demo``, ``sK``, ``notify/0``, ``notify/1``) in insertion (_id)
        order."""
        return self.dataset.share(share).events()

    def stop_growing(self) -> None:
        """Append no more events (``--grow``) from now on; returns once the last are in."""
        self._growth_stopped.set()
        if self._grower is not None:
            self._grower.join(timeout=5)

    def append_events(self, share: str = "demo", count: int = 1) -> int:
        """Insert ``count`` new generated events into a share now; returns its new size."""
        return self.dataset.append(share, count)

    def refuse_key(self, share: str, refused: bool = True) -> None:
        """Make share ``share`` (an id: ``demo``, ``sK``, ``notify``) answer 401 to the right key
        from now on, as a hub that revoked it would; ``refused=False`` accepts it again."""
        self.hub.refuse_key(share, refused)
