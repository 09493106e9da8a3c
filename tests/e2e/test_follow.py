"""Follow mode against a growing share: stopped, started again, every event exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from .helpers import command, read_jsonl, share


def follow_for(args: list[str], seconds: float, sig: int = signal.SIGTERM) -> tuple[int, str]:
    environment = dict(os.environ, APIKEY="demo-key")
    process = subprocess.Popen(command() + args, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=environment)
    time.sleep(seconds)
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    return process.returncode, err.decode()


def test_follow_stopped_and_restarted_writes_every_event_once(make_sim: Any,
                                                               tmp_path: Any) -> None:
    sim = make_sim(events=800, page_max=300, grow=40)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    args = [share(sim), "--follow", "--interval=0.3", "--format=jsonl", "-o", str(out),
            "--state", str(state)]
    code, err = follow_for(args, 2.5)
    assert code == 0, err
    first = read_jsonl(str(out))
    assert len(first) > 800
    time.sleep(1.0)  # events keep arriving while nobody follows
    code, err = follow_for(args, 2.5, signal.SIGINT)
    assert code == 0, err
    got = read_jsonl(str(out))
    truth = sim.share_events("demo")
    assert len(got) > len(first)
    assert got == truth[:len(got)]  # in insertion order, no gap, no repeat


def test_follow_to_stdout_closes_the_array_on_stop(make_sim: Any) -> None:
    import json

    sim = make_sim(events=300, grow=20)
    environment = dict(os.environ, APIKEY="demo-key")
    process = subprocess.Popen(command() + [share(sim), "--follow", "--interval=0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment)
    time.sleep(2.0)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    events = json.loads(out)
    assert len(events) > 300
    assert events == sim.share_events("demo")[:len(events)]
