"""Serving speed of hubasync-sim: 300,000 events (3 pages of 100,000) through the simulator's
three-phase protocol, against a minimal server returning the same precomputed bytes.

    python bench/sim_serving.py [--events 300000] [--runs 7] [--event-size BYTES]

Prints the median wall time of each and their ratio (the simulator must stay <= 1.5x).
Both are read by the same http.client loop on one kept-alive connection, asking for gzip and
reading the bodies without decoding them. The first simulator run fills its page cache and is
not counted, as a benchmark's warm-up would.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

from hubasync.sim import SimConfig, Simulator


def fetch_sim(port: int, apikey: str) -> Tuple[float, List[bytes]]:
    """Download every page through POST, status and results; (seconds, raw bodies)."""
    headers = {"Authorization": f"token {apikey}", "Accept-Encoding": "gzip",
               "Accept": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    bodies: List[bytes] = []
    token: Optional[str] = None
    start = time.perf_counter()
    while True:
        path = "/shares/v2/async/demo?limit=100000" + (f"&token={token}" if token else "")
        conn.request("POST", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        location = resp.getheader("Location") or ""
        while True:
            conn.request("GET", location, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 302:
                break
        conn.request("GET", resp.getheader("Location") or "", headers=headers)
        resp = conn.getresponse()
        bodies.append(resp.read())
        token = resp.getheader("X-Next-Token")
        if token is None:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, bodies


def minimal_server(bodies: List[bytes]) -> ThreadingHTTPServer:
    """A bare HTTP/1.1 server: GET /N returns body N, gzip-labelled, nothing else."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = bodies[int(self.path[1:])]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fetch_minimal(port: int, pages: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start = time.perf_counter()
    for i in range(pages):
        conn.request("GET", f"/{i}", headers={"Accept-Encoding": "gzip"})
        conn.getresponse().read()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--event-size", type=int, default=None)
    args = parser.parse_args()

    t0 = time.perf_counter()
    config = SimConfig(port=0, events=args.events, page_max=100_000, event_size=args.event_size)
    with Simulator(config) as sim:
        print(f"generated {args.events} events in {time.perf_counter() - t0:.1f} s")
        first, bodies = fetch_sim(sim.port, sim.apikey)
        print(f"first (uncached) download: {first:.3f} s, {sum(map(len, bodies)) / 1e6:.1f} MB"
              f" in {len(bodies)} pages")
        server = minimal_server(bodies)
        sim_times: List[float] = []
        floor_times: List[float] = []
        for _ in range(args.runs):
            elapsed, again = fetch_sim(sim.port, sim.apikey)
            assert again == bodies, "the simulator served different bytes"
            sim_times.append(elapsed)
            floor_times.append(fetch_minimal(server.server_address[1], len(bodies)))
        server.shutdown()
        server.server_close()
    sim_median = statistics.median(sim_times)
    floor_median = statistics.median(floor_times)
    print(f"simulator:      median {sim_median:.4f} s over {args.runs} runs")
    print(f"minimal server: median {floor_median:.4f} s over {args.runs} runs")
    print(f"ratio: {sim_median / floor_median:.2f} (limit 1.5)")


if __name__ == "__main__":
    main()
