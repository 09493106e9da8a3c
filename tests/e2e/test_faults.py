"""The fault matrix: every fault at every phase, and every event exactly once, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import read_jsonl, run, share

FAULTS = [
    "post-503", "post-429", "post-500", "post-drop",
    "status-502", "status-503", "status-504", "status-500", "status-404", "status-410",
    "status-expired", "status-no-retry-after",
    "results-502", "results-503", "results-504", "results-500", "results-404", "results-410",
    "results-expired", "results-truncated", "results-reset", "results-bad-gzip",
    "results-bad-json", "results-slow", "results-trickle", "keepalive-drop",
]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_fault_once_then_every_event_exactly_once(make_sim: Any, fault: str, fmt: str,
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
    assert json.loads(done.stdout) == []  # the array is still closed and valid


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
