"""How many shares one ``hubasync sync`` follows: time, peak memory and idle CPU, by share count.

    python bench/sync_scale.py [--shares 50,100,200] [--events 1000] [--idle 20]

For each share count N, a simulator (its own process, ``--shares N --events E``) serves N API
shares; ``hubasync sync CONFIG --once`` (concurrency 8) is timed from spawn to exit, with its peak
RSS from ``os.wait4``, and its outputs checked (every share whole). Then ``hubasync sync CONFIG``
follows the same shares, caught up, for ``--idle`` seconds (``--interval``, 5 s by default, so
that many passes fit): its CPU time over that span, divided by the passes of all shares, is what
one pass of an idle share costs, and so how many shares one core can follow at a given interval.
Per-share memory is the slope of peak RSS over N. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ASYNC_PY = os.path.join(ROOT, "async.py")


def start_sim(shares: int, events: int) -> Tuple[subprocess.Popen[bytes], str]:
    sim = subprocess.Popen([sys.executable, "-m", "hubasync.sim", "--port", "0", "--shares",
                            str(shares), "--events", str(events), "--page-max", "1000",
                            "--retry-after", "0.2"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
    assert sim.stdout is not None
    url = sim.stdout.readline().decode().strip()
    return sim, url


def write_config(folder: str, url: str, shares: int, interval: float) -> str:
    path = os.path.join(folder, "hubasync.toml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f'directory = "{folder}"\napikey_env = "APIKEY"\nconcurrency = 8\n'
                     f"interval = {interval}\n")
        for n in range(1, shares + 1):
            handle.write(f'\n[shares.s{n}]\nurl = "{url}/shares/v2/async/s{n}"\n')
    return path


def timed(command: List[str], seconds: float = 0.0) -> Tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS MB and exit code of ``command`` (stopped with
    SIGTERM after ``seconds`` if given)."""
    environment = dict(os.environ, APIKEY="demo-key")
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=environment)
    if seconds:
        time.sleep(seconds)
        child.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode


def count_lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def measure(shares: int, events: int, idle: float,
            interval: float) -> Tuple[float, float, float, float]:
    sim, url = start_sim(shares, events)
    try:
        with tempfile.TemporaryDirectory(prefix="hubasync-scale-") as folder:
            config = write_config(folder, url, shares, interval)
            wall, _, peak, code = timed([sys.executable, ASYNC_PY, "sync", config, "--once"])
            assert code == 0, f"sync --once exited {code}"
            short = [n for n in range(1, shares + 1)
                     if count_lines(os.path.join(folder, f"s{n}.jsonl")) != events]
            assert not short, f"shares not whole: {short[:5]}"
            _, cpu, idle_peak, _ = timed([sys.executable, ASYNC_PY, "sync", config], idle)
            passes = shares * max(1.0, idle / interval)
            return wall, peak, cpu / passes, idle_peak
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shares", default="50,100,200")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.shares.split(",")]
    rows = []
    for shares in counts:
        wall, peak, per_pass, idle_peak = measure(shares, args.events, args.idle, args.interval)
        rows.append((shares, wall, peak, per_pass, idle_peak))
        print(f"{shares} shares: --once {wall:.1f} s, peak {peak:.1f} MB; following idle: "
              f"{1000 * per_pass:.1f} ms of CPU a share and pass, peak {idle_peak:.1f} MB",
              file=sys.stderr)
    print("| shares | events each | sync --once s | peak RSS MB | idle: CPU ms a share and pass "
          "| idle peak RSS MB | shares one core follows at interval 300 s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for shares, wall, peak, per_pass, idle_peak in rows:
        print(f"| {shares} | {args.events:,} | {wall:.1f} | {peak:.1f} | {1000 * per_pass:.1f} "
              f"| {idle_peak:.1f} | {300 / per_pass:,.0f} |")
    if len(rows) > 1:
        (n0, _, p0, _, _), (n1, _, p1, _, _) = rows[0], rows[-1]
        print(f"\nPeak memory per share: {(p1 - p0) / (n1 - n0) * 1024:.0f} KB "
              f"(slope from {n0} to {n1} shares).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
