"""Time to the first event: how soon the first event reaches stdout when it is a pipe and when
it is a terminal (a pseudo-terminal, where the progress line is drawn).

    python bench/first_event.py [--repeat 5] [--baseline DIR]

A simulator (its own process; 0.3 s jobs, ``Retry-After: 1``) serves a share; ``async.py URL
--limit 5000`` is started ``--repeat`` times each way and timed from spawn until ``{"`` first
appears on its stdout. ``--baseline DIR`` times another checkout's ``async.py`` too,
interleaved. Prints the medians and every run's time.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def first_event(command: List[str], env: Dict[str, str], terminal: bool) -> float:
    """Seconds from spawning ``command`` to the first event on its stdout."""
    started = time.monotonic()
    if terminal:
        master, slave = pty.openpty()
        child = subprocess.Popen(command, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        try:
            _read_until_event(lambda: os.read(master, 65536))
            seen_at = time.monotonic()
        finally:
            os.close(master)
            child.kill()
            child.wait()
    else:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 env=env)
        stdout = child.stdout
        assert stdout is not None
        try:
            _read_until_event(lambda: stdout.read1(65536))
            seen_at = time.monotonic()
        finally:
            child.kill()
            child.wait()
            stdout.close()
    return seen_at - started


def _read_until_event(read: Callable[[], bytes]) -> None:
    """Read until ``{"`` (an event's start) has been seen; fail if the output ends first."""
    seen = b""
    while b'{"' not in seen:
        chunk = read()
        if not chunk:
            raise RuntimeError("the client ended before its first event")
        seen += chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs each way (default 5)")
    parser.add_argument("--baseline", help="another checkout, timed the same way, interleaved")
    args = parser.parse_args()
    sim = subprocess.Popen(
        [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "20000",
         "--page-max", "1000", "--job-latency", "0.3", "--retry-after", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert sim.stdout is not None
    url = sim.stdout.readline().decode().strip() + "/shares/v2/async/demo"
    roots = {"hubasync": ROOT} if not args.baseline else {"baseline": args.baseline,
                                                            "hubasync": ROOT}
    times: Dict[str, List[float]] = {}
    try:
        for _ in range(args.repeat):
            for label, root in roots.items():
                env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
                env.update(APIKEY="demo-key", PYTHONPATH=os.path.join(root, "src"))
                command = [sys.executable, os.path.join(root, "async.py"), url, "--limit=5000"]
                for terminal in (False, True):
                    key = f"{label} {'terminal' if terminal else 'pipe'}"
                    times.setdefault(key, []).append(first_event(command, env, terminal))
    finally:
        sim.kill()
        sim.wait()
    for key, runs in times.items():
        print(f"{key:20} median {statistics.median(runs):.2f} s  "
              f"({', '.join(f'{t:.2f}' for t in runs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
