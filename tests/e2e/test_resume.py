"""Resumable runs: killed with SIGKILL at random moments, started again until done."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from typing import Any

import pytest

from .helpers import command, read_jsonl, run, share


def kill_and_resume_until_done(args: list[str], *, seed: int, max_runs: int = 60) -> int:
    """Run ``args`` repeatedly, each killed after a random time, until one exits by itself."""
    rng = random.Random(seed)
    environment = dict(os.environ, APIKEY="demo-key")
    for runs in range(1, max_runs + 1):
        process = subprocess.Popen(command() + args, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=environment)
        try:
            process.wait(timeout=rng.uniform(0.2, 1.2))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            continue
        assert process.stderr is not None
        assert process.returncode == 0, process.stderr.read()
        return runs
    raise AssertionError("never finished")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_sigkill_at_random_moments_then_resume_gives_every_event_once(
        make_sim: Any, tmp_path: Any, fmt: str) -> None:
    sim = make_sim(events=6000, page_max=250, job_latency=0.05)
    out, state = tmp_path / f"out.{fmt}", tmp_path / "state.json"
    args = [share(sim), "--sort=_id", f"--format={fmt}", "-o", str(out), "--state", str(state)]
    runs = kill_and_resume_until_done(args, seed=hash(fmt) & 0xFFFF)
    assert runs > 1  # it was really killed along the way
    expected = sim.share_events("demo")
    if fmt == "jsonl":
        assert read_jsonl(str(out)) == expected
    elif fmt == "json":
        assert json.loads(out.read_bytes()) == expected
        assert not os.path.exists(str(out) + ".part")
    else:
        import csv

        with open(out, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["uuid"] for row in rows] == [event["uuid"] for event in expected]
    assert json.loads(state.read_text())["complete"] is True
    again = run(args)  # a finished run does nothing more
    assert again.code == 0


def test_interrupted_run_resumes_exactly_once(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(events=4000, page_max=400, job_latency=0.2)
    out, state = tmp_path / "out.json", tmp_path / "state.json"
    args = [share(sim), "--sort=_id", "-o", str(out), "--state", str(state)]
    environment = dict(os.environ, APIKEY="demo-key")
    process = subprocess.Popen(command() + args, stderr=subprocess.PIPE, env=environment)
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert not out.exists()  # a JSON file appears only when complete
    done = run(args)
    assert done.code == 0, done.stderr
    assert json.loads(out.read_bytes()) == sim.share_events("demo")


def test_state_of_another_command_is_refused(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(events=300)
    out, state = tmp_path / "out.jsonl", tmp_path / "state.json"
    first = run([share(sim), "--format=jsonl", "-o", str(out), "--state", str(state)])
    assert first.code == 0, first.stderr
    other = run([share(sim), "--format=jsonl", "-o", str(out), "--state", str(state),
                 "--filter=type=phishing"])
    assert other.code == 2
    assert "another command" in other.stderr


def test_nightly_sync_appends_only_new_events(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(events=1500, page_max=500)
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state)]
    assert run(args).code == 0
    assert read_jsonl(str(out)) == sim.share_events("demo")
    sim.append_events("demo", 700)
    done = run(args)
    assert done.code == 0, done.stderr
    assert read_jsonl(str(out)) == sim.share_events("demo")
    assert len(sim.share_events("demo")) == 2200
