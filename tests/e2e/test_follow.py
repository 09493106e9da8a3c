"""Follow mode against a growing share: stopped, started again, every event exactly once."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest
from processes import Child, wait_until

from .helpers import command, read_jsonl, share


def follow(args: list[str]) -> Child:
    return Child(command() + args, env=dict(os.environ, APIKEY="demo-key"))


def recorded(path: Any) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            state: dict[str, Any] = json.load(handle)
            return state
    except (FileNotFoundError, ValueError):  # not written yet
        return {}


def recorded_beyond(state: Any, out: Any, events: int) -> Any:
    """The state's token once it records a position with more than ``events`` lines before it."""
    position = recorded(state)
    if not position.get("token"):
        return None
    with open(out, "rb") as handle:
        lines = handle.read(position["output_offset"]).count(b"\n")
    return position["token"] if lines > events else None


def test_follow_stopped_and_restarted_writes_every_event_once(make_sim: Any,
                                                               tmp_path: Any) -> None:
    sim = make_sim(events=800, page_max=300, grow=40)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    # Each run is stopped while it waits for the next pass (--interval), once the pass is over
    # and its position recorded. A stop between a pass's last page and the recording of its
    # X-Last-Inserted-Token is issue 9 item 2 (its own test stops the run at every step).
    args = [share(sim), "--follow", "--interval=10", "--format=jsonl", "-o", str(out),
            "--state", str(state)]
    with follow(args) as child:
        wait_until(lambda: recorded_beyond(state, out, 800),
                   "events beyond the first 800, and their position recorded", child=child)
        assert child.stop(signal.SIGTERM) == 0, child.stderr_text()
    first = read_jsonl(str(out))
    assert len(first) > 800
    # events keep arriving while nobody follows
    wait_until(lambda: len(sim.share_events("demo")) > len(first) + 40, "the share to grow")
    with follow(args) as child:
        grown = len(sim.share_events("demo"))
        wait_until(lambda: recorded_beyond(state, out, grown - 1),
                   "the events added meanwhile, and their position recorded", child=child)
        assert child.stop(signal.SIGINT) == 0, child.stderr_text()
    got = read_jsonl(str(out))
    truth = sim.share_events("demo")
    assert len(got) >= grown
    assert got == truth[:len(got)]  # in insertion order, no gap, no repeat


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_follow_to_stdout_closes_the_array_on_stop(make_sim: Any, signum: int) -> None:
    sim = make_sim(events=300, grow=20)
    # the first page (300 events, over 64 KB) would fill a pipe: stdout goes to a file
    with follow([share(sim), "--follow", "--interval=0.2"]) as child:
        wait_until(lambda: child.stdout_bytes().count(b'"uuid"') > 300,
                   "events beyond the first 300 on stdout", child=child)
        assert child.stop(signum) == 0, child.stderr_text()
        events = json.loads(child.stdout_bytes())
    assert len(events) > 300
    assert events == sim.share_events("demo")[:len(events)]
