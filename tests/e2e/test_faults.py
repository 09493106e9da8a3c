"""The fault matrix: every fault at every phase, and every event exactly once, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hubasync.sim import FAULTS as SIM_FAULTS

from .helpers import read_jsonl, run, share

# Every fault the simulator knows, each at its phase; formats alternate to cover both paths.
FAULTS = list(SIM_FAULTS)


@pytest.mark.parametrize("fault, fmt", [
    (fault, ("json", "jsonl")[number % 2]) for number, fault in enumerate(FAULTS)
])
def test_fault_twice_then_every_event_exactly_once(make_sim: Any, fault: str, fmt: str,
                                                   tmp_path: Any) -> None:
    sim = make_sim(events=2500, page_max=1000, faults=[f"{fault}:2"], retry_after=0.1,
                   fault_delay=1.5)
    out = tmp_path / f"out.{fmt}"
    done = run([share(sim), "--sort=_id", f"--format={fmt}", "-o", str(out), "--timeout=1"])
    assert done.code == 0, done.stderr
    expected = sim.share_events("demo")
    got = json.loads(out.read_bytes()) if fmt == "json" else read_jsonl(str(out))
    assert got == expected
    assert sim.stats.faults.get(fault, 0) >= 1  # the fault really happened


@pytest.mark.parametrize("fault", ["results-503", "status-502", "post-503", "results-reset"])
def test_endless_fault_ends_in_exit_6_saying_what_failed(make_sim: Any, fault: str) -> None:
    sim = make_sim(events=100, faults=[f"{fault}:1000"], retry_after=0.05)
    done = run([share(sim), "--retries=2"])
    assert done.code == 6
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "3 failed attempts" in lines[0]
    assert done.stdout in ("", b"")  # nothing a loader would read as "no events"


def test_relative_locations_are_resolved_against_the_request(make_sim: Any) -> None:
    sim = make_sim(events=1200, page_max=500, relative_locations=True)
    done = run([share(sim), "--sort=_id"])
    assert done.code == 0, done.stderr
    assert done.events == sim.share_events("demo")


def test_random_faults_soak(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(events=6000, page_max=300, fault_rate=0.25, seed=7, retry_after=0.05,
                   fault_delay=1.2)
    out = tmp_path / "soak.jsonl"
    done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--timeout=1",
                "--retries=12"], timeout=300)
    assert done.code == 0, done.stderr
    assert read_jsonl(str(out)) == sim.share_events("demo")
    assert sum(sim.stats.faults.values()) >= 10
