"""A hub that tries to hold a run forever: each ends in bounded time, exit 6, one clear line."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from .helpers import one_line, run, share


@pytest.mark.parametrize("fault, args, words", [
    ("status-pending-forever", ["--job-timeout=2"], "pending for more than 2 s"),
    ("results-trickle-forever", ["--page-timeout=2"], "--page-timeout"),
    ("results-same-token", [], "same X-Next-Token"),
    ("results-token-cycle", [], "circle"),
    ("results-endless-empty", ["--max-empty-pages=5"], "--max-empty-pages"),
    ("results-endless-repeat", [], "same events again"),
])
def test_a_hub_that_would_hold_the_run_forever_is_stopped(make_sim: Any, fault: str,
                                                          args: list[str], words: str) -> None:
    sim = make_sim(events=2500, page_max=500, faults=[f"{fault}:1000000"], retry_after=0.05,
                   fault_delay=0.2)
    started = time.monotonic()
    done = run([share(sim), "--sort=_id", "--format=jsonl", "--timeout=5", *args], timeout=120)
    assert done.code == 6, done.stderr
    assert words in one_line(done.stderr, then_token=True)
    assert time.monotonic() - started < 60
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events == sim.share_events("demo")[:len(events)]  # what came out is whole and right


def test_more_events_than_asked_for_end_the_run(make_sim: Any) -> None:
    sim = make_sim(events=2500, page_max=1000, faults=["results-more-events:10"])
    done = run([share(sim), "--sort=_id", "--limit=300", "--format=jsonl"])
    assert done.code == 6, done.stderr
    assert "more than the 300 events asked for" in one_line(done.stderr, then_token=True)
    assert done.stdout == b""  # not an event of the page that broke the rule


def test_a_303_for_a_finished_job_is_followed(make_sim: Any) -> None:
    sim = make_sim(events=1200, page_max=500, faults=["status-303:100"])
    done = run([share(sim), "--sort=_id"])
    assert done.code == 0, done.stderr
    assert done.events == sim.share_events("demo")
    assert sim.stats.faults["status-303"] >= 3
