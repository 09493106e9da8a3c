"""SIGTERM ends the command and the service within seconds even while a batch waits on a receiver
that hangs (it accepts, then never answers; without the stop's abort each would wait for the
destination's timeout, an hour here): the position stays where acknowledgements left it, the
file keeps every event, and nothing is said but the stop."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from processes import Child, silent_port, wait_until

from .deliveries import ENV, positions, sync_config
from .helpers import command, share, start

STOPPED_WITHIN = 10.0  # seconds: the bound the service promises (systemd waits 60)


def test_the_command_stops_while_a_receiver_hangs(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=300, page_max=100)
    state = tmp_path / "out.state"
    with silent_port() as (port, accepted), \
            start([share(sim), "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                   "--state", str(state), "--follow",
                   "--to", f"relp://127.0.0.1:{port}?timeout=3600"]) as child:
        wait_until(lambda: accepted, "the delivery's connection", child=child)
        started = time.monotonic()
        code = child.stop(signal.SIGTERM)
        took = time.monotonic() - started
        stderr = child.stderr_text()
    assert code == 0, stderr
    assert took < STOPPED_WITHIN, f"the stop took {took:.1f} s"
    assert stderr.splitlines() and all(line.startswith("hubasync: stopped by SIGTERM")
                                       for line in stderr.splitlines()), stderr
    written, delivered = positions(state)
    assert written >= 100 and delivered["relp1"]["seq"] == 0
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == written


def test_the_service_stops_while_a_receiver_hangs(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=300, page_max=100)
    with silent_port() as (port, accepted):
        config = sync_config(tmp_path, {name: share(sim, name) for name in ("s1", "s2")},
                             {"siem": f'url = "relp://127.0.0.1:{port}"\ntimeout = 3600'},
                             deliver=["siem"])
        with Child(command("hubasync") + ["sync", str(config)], env=ENV) as service:
            wait_until(lambda: len(accepted) >= 2, "both shares' delivery connections",
                       child=service)
            started = time.monotonic()
            code = service.stop(signal.SIGTERM)
            took = time.monotonic() - started
            stderr = service.stderr_text()
    assert code == 0, stderr
    assert took < STOPPED_WITHIN, f"the stop took {took:.1f} s"
    assert "Traceback" not in stderr and 'msg="delivery failed"' not in stderr, stderr
    for name in ("s1", "s2"):
        written, delivered = positions(tmp_path / f"{name}.state")
        assert written >= 100 and delivered["siem"]["seq"] == 0
