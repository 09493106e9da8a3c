"""Follow mode against a growing share: stopped, started again, every event exactly once."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from processes import Child, wait_until

from .helpers import command, read_jsonl, share


def follow(args: list[str]) -> Child:
    return Child(command() + args, env=dict(os.environ, APIKEY="demo-key"))


def lines_in(path: Any) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def test_follow_stopped_and_restarted_writes_every_event_once(make_sim: Any,
                                                               tmp_path: Any) -> None:
    sim = make_sim(events=800, page_max=300, grow=40)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    args = [share(sim), "--follow", "--interval=0.3", "--format=jsonl", "-o", str(out),
            "--state", str(state)]
    with follow(args) as child:
        wait_until(lambda: lines_in(out) > 800, "events written beyond the first 800",
                   child=child)
        assert child.stop(signal.SIGTERM) == 0, child.stderr_text()
    first = read_jsonl(str(out))
    assert len(first) > 800
    # events keep arriving while nobody follows
    wait_until(lambda: len(sim.share_events("demo")) > len(first) + 40, "the share to grow")
    with follow(args) as child:
        grown = len(sim.share_events("demo"))
        wait_until(lambda: lines_in(out) >= grown, "the events added meanwhile", child=child)
        assert child.stop(signal.SIGINT) == 0, child.stderr_text()
    got = read_jsonl(str(out))
    truth = sim.share_events("demo")
    assert len(got) >= grown
    assert got == truth[:len(got)]  # in insertion order, no gap, no repeat


def test_follow_to_stdout_closes_the_array_on_stop(make_sim: Any) -> None:
    sim = make_sim(events=300, grow=20)
    # the first page (300 events, over 64 KB) would fill a pipe: stdout goes to a file
    with follow([share(sim), "--follow", "--interval=0.2"]) as child:
        wait_until(lambda: child.stdout_bytes().count(b'"uuid"') > 300,
                   "events beyond the first 300 on stdout", child=child)
        assert child.stop(signal.SIGTERM) == 0, child.stderr_text()
        events = json.loads(child.stdout_bytes())
    assert len(events) > 300
    assert events == sim.share_events("demo")[:len(events)]
