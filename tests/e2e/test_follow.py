"""Follow mode against a growing share: stopped, started again, every event exactly once."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest
from processes import Child, wait_until

from .helpers import read_jsonl, saved_state, share, start


def after_a_pass(state: Any, out: Any) -> list[dict[str, Any]]:
    """The events committed in ``out`` when the state records a finished pass, else []."""
    position = saved_state(state)
    if not position.get("complete"):
        return []
    with open(out, "rb") as handle:
        return [json.loads(line) for line in handle.read(position["output_offset"]).splitlines()]


def test_follow_stopped_and_restarted_writes_every_event_once(make_sim: Any,
                                                               tmp_path: Any) -> None:
    # The share grows only when the test adds events, and each wait is for the output and its
    # state to reach a count: nothing depends on how fast the machine is. A stop lands while
    # the run waits for its next pass, or in a pass that finds nothing new.
    sim = make_sim(events=800, page_max=300)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    args = [share(sim), "--follow", "--interval=0.2", "--format=jsonl", "-o", str(out),
            "--state", str(state)]

    def followed_up_to(events: int, what: str, child: Child) -> None:
        wait_until(lambda: len(after_a_pass(state, out)) >= events, what, child=child)
        assert after_a_pass(state, out) == sim.share_events("demo")  # no gap, no repeat

    with start(args) as child:
        followed_up_to(800, "the first pass recorded", child)
        sim.append_events("demo", 150)
        followed_up_to(950, "a pass over the 150 new events", child)
        assert child.stop(signal.SIGTERM) == 0, child.stderr_text()
    sim.append_events("demo", 400)  # events keep arriving while nobody follows
    with start(args) as child:
        followed_up_to(1350, "the events added meanwhile", child)
        sim.append_events("demo", 50)
        followed_up_to(1400, "the events added while it follows", child)
        assert child.stop(signal.SIGINT) == 0, child.stderr_text()
    assert read_jsonl(str(out)) == sim.share_events("demo")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_follow_to_stdout_closes_the_array_on_stop(make_sim: Any, signum: int) -> None:
    sim = make_sim(events=300)
    # the first page (300 events, over 64 KB) would fill a pipe: stdout goes to a file
    with start([share(sim), "--follow", "--interval=0.2"]) as child:
        wait_until(lambda: child.stdout_bytes().count(b'"uuid"') >= 300,
                   "the first 300 events on stdout", child=child)
        sim.append_events("demo", 20)
        wait_until(lambda: child.stdout_bytes().count(b'"uuid"') >= 320,
                   "the 20 events added on stdout", child=child)
        assert child.stop(signum) == 0, child.stderr_text()
        events = json.loads(child.stdout_bytes())
    assert events == sim.share_events("demo")
