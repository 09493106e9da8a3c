"""Serving speed of hubasync-sim: 300,000 events (3 pages of 100,000) through the simulator's
three-phase protocol, against a minimal server returning the same precomputed bytes.

    python bench/sim_serving.py [--events 300000] [--runs 7] [--event-size BYTES]

Prints the median wall time of each and their ratio (the simulator must stay <= 1.5x).
Each server runs in its own process (``python -m hubasync.sim`` and this script with
``--serve-minimal``); this process is the client: the same http.client loop on one kept-alive
connection, asking for gzip and reading the bodies without decoding them. The first simulator
run fills its page cache and is not counted, as a benchmark's warm-up would.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple
from urllib.parse import urlsplit


def fetch_sim(port: int, apikey: str, keep: bool = True) -> Tuple[float, List[bytes]]:
    """Download every page through POST, status and results; (seconds, raw bodies).

    With ``keep=False`` only each body's length is kept, as for the minimal server: keeping
    them all would make the client allocate fresh memory for each page and skew the timing.
    """
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
        body = resp.read()
        bodies.append(body if keep else str(len(body)).encode())
        token = resp.getheader("X-Next-Token")
        if token is None:
            break
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, bodies


def serve_minimal(folder: str) -> None:
    """A bare HTTP/1.1 server: GET /N returns the bytes of folder/N, gzip-labelled; nothing else.

    Prints its port on stdout, then serves until killed.
    """
    bodies: List[bytes] = []
    while os.path.exists(os.path.join(folder, str(len(bodies)))):
        with open(os.path.join(folder, str(len(bodies))), "rb") as handle:
            bodies.append(handle.read())

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
    print(server.server_address[1], flush=True)
    server.serve_forever()


def fetch_minimal(port: int, pages: int) -> Tuple[float, List[bytes]]:
    """Download the same pages from the minimal server; (seconds, body lengths)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    sizes: List[bytes] = []
    start = time.perf_counter()
    for i in range(pages):
        conn.request("GET", f"/{i}", headers={"Accept-Encoding": "gzip"})
        sizes.append(str(len(conn.getresponse().read())).encode())
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--event-size", type=int, default=None)
    parser.add_argument("--serve-minimal", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_minimal:
        serve_minimal(args.serve_minimal)
        return

    command = [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", str(args.events),
               "--page-max", "100000"]
    if args.event_size:
        command += ["--event-size", str(args.event_size)]
    t0 = time.perf_counter()
    sim = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    minimal: Optional[subprocess.Popen[str]] = None
    try:
        assert sim.stdout is not None
        sim_port = urlsplit(sim.stdout.readline().strip()).port or 0
        print(f"simulator with {args.events} events up in {time.perf_counter() - t0:.1f} s")
        first, bodies = fetch_sim(sim_port, "demo-key")
        print(f"first (uncached) download: {first:.3f} s, {sum(map(len, bodies)) / 1e6:.1f} MB"
              f" in {len(bodies)} pages")
        assert fetch_sim(sim_port, "demo-key")[1] == bodies, "the simulator served other bytes"
        sizes = [str(len(body)).encode() for body in bodies]
        with tempfile.TemporaryDirectory() as folder:
            for i, body in enumerate(bodies):
                with open(os.path.join(folder, str(i)), "wb") as handle:
                    handle.write(body)
            minimal = subprocess.Popen(
                [sys.executable, __file__, "--serve-minimal", folder],
                stdout=subprocess.PIPE, text=True)
            assert minimal.stdout is not None
            floor_port = int(minimal.stdout.readline())
        sim_times: List[float] = []
        floor_times: List[float] = []
        for _ in range(args.runs):
            elapsed, got = fetch_sim(sim_port, "demo-key", keep=False)
            assert got == sizes
            sim_times.append(elapsed)
            elapsed, got = fetch_minimal(floor_port, len(bodies))
            assert got == sizes
            floor_times.append(elapsed)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(10)
        if minimal is not None:
            minimal.terminate()
            minimal.wait(10)
    sim_median = statistics.median(sim_times)
    floor_median = statistics.median(floor_times)
    print(f"simulator:      median {sim_median:.4f} s over {args.runs} runs")
    print(f"minimal server: median {floor_median:.4f} s over {args.runs} runs")
    print(f"ratio: {sim_median / floor_median:.2f} (limit 1.5)")


if __name__ == "__main__":
    main()
