"""``hubasync sync`` keeps every share at its pace while a slowloris holds its metrics port."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from processes import Child, wait_until

from hubasync.service.commands import FILES_PER_SHARE, FILES_SPARE

from .test_sync import config, events_of

SLOWLORIS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "slowloris.py")
SHARES = ["s1", "s2", "s3", "s4"]
FILE_LIMIT = 256  # the service runs with this many descriptors at most: an unbounded server dies
# the service under a low limit of open files, as `ulimit -n 256` would start it
LIMITED = ("import resource, runpy, sys; "
           f"resource.setrlimit(resource.RLIMIT_NOFILE, ({FILE_LIMIT}, {FILE_LIMIT})); "
           "sys.argv[0] = 'hubasync'; runpy.run_module('hubasync', run_name='__main__')")


def _count(pid: int, what: str) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/{what}"))
    except OSError:
        return 0


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/PID/fd")
def test_shares_keep_their_pace_while_300_slow_connections_hold_the_metrics_port(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=len(SHARES), events=400, page_max=50, grow=20)
    path = config(sim, tmp_path, SHARES, metrics=True)
    environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environment["APIKEY"] = "demo-key"
    # concurrency 3: the workers, the main thread, the metrics server, a few the runtime starts
    with Child([sys.executable, "-c", LIMITED, "sync", str(path)], env=environment) as service:
        served = wait_until(lambda: re.search(r"address=http://[^\s:]+:(\d+)/metrics",
                                              service.stderr_text()),
                            "the metrics address", child=service)
        port = served[1]
        wait_until(lambda: all(len(events_of(tmp_path / f"{n}.jsonl")) >= 400 for n in SHARES),
                   "every share caught up before the attack", child=service)
        budget = len(SHARES) * FILES_PER_SHARE + FILES_SPARE  # what the service says it needs
        fds: List[int] = []
        threads: List[int] = []

        def sample() -> None:  # checked all along, the first time it is over the bounds
            fds.append(_count(service.pid, "fd"))
            threads.append(_count(service.pid, "task"))
            assert fds[-1] <= budget, f"the service holds {fds[-1]} files, over {budget}"
            assert threads[-1] <= 3 + 8, f"the service runs {threads[-1]} threads"

        with Child([sys.executable, SLOWLORIS, "127.0.0.1", port, "300", "0.2",
                    "--reconnect"]) as attacker:

            def attack() -> Dict[str, int]:
                sample()
                lines = attacker.stdout_bytes().decode().splitlines()
                return dict((k, int(v)) for k, v in (f.split("=") for f in lines[-1].split())) \
                    if lines else {}

            wait_until(lambda: attack().get("opened", 0) >= 300, "300 connections opened",
                       child=attacker)
            # what the hub holds now, and 60 events more per share (3 s of growth), must arrive
            targets = {n: len(sim.share_events(n)) + 60 for n in SHARES}

            def caught_up() -> bool:
                sample()
                assert service.poll() is None, service.stderr_text()
                return all(len(events_of(tmp_path / f"{n}.jsonl")) >= targets[n]
                           for n in SHARES)

            wait_until(caught_up, "every share keeping its pace under the attack",
                       child=service)
            assert attacker.poll() is None  # the attack lasted all along
        assert service.stop(signal.SIGTERM) == 0, service.stderr_text()
        assert "Traceback" not in service.stderr_text()
    assert len(fds) > 10 and max(fds) > 0  # sampled, and from the service itself
    for name in SHARES:
        got = events_of(tmp_path / f"{name}.jsonl")
        assert got == sim.share_events(name)[:len(got)], name
