"""Resumable runs: killed with SIGKILL at random moments, started again until done."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from typing import Any, Callable

import pytest
from processes import Child, wait_until

from .helpers import HeldJobs, read_jsonl, run, saved_state, share, start


def ended_or_asked(child: Child, sim: Any, results: int) -> Callable[[], bool]:
    """True once ``child`` ended or the simulator counted ``results`` results requests."""
    return lambda: child.poll() is not None or sim.stats.requests["results"] >= results


def kill_and_resume_until_done(sim: Any, args: list[str], *, seed: int,
                               max_runs: int = 60) -> int:
    """Run ``args`` repeatedly, each killed (SIGKILL) at a random moment of its 2nd to 4th page,
    until one exits by itself; return how many runs it took.

    The moment is counted in pages (the simulator's results requests), not seconds, so a
    slow machine changes nothing: a run asks for page N+1's results only after committing
    page N, so each killed run committed a page at least, and the first is surely killed.
    """
    rng = random.Random(seed)
    for runs in range(1, max_runs + 1):
        with start(args) as child:
            results = sim.stats.requests["results"] + rng.randint(2, 4)
            wait_until(ended_or_asked(child, sim, results), "the run's pages")
            if child.poll() is None:
                time.sleep(rng.uniform(0, 0.05))  # anywhere in that page: any moment is fair
                child.kill()
                if child.returncode == -signal.SIGKILL:
                    continue
            assert child.returncode == 0, child.stderr_text()
            return runs
    raise AssertionError("never finished")


SEEDS = {"jsonl": 1, "json": 2, "csv": 3}  # not hash(fmt): it changes with PYTHONHASHSEED


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_sigkill_at_random_moments_then_resume_gives_every_event_once(
        make_sim: Any, tmp_path: Any, fmt: str) -> None:
    sim = make_sim(events=6000, page_max=250, job_latency=0.05)
    out, state = tmp_path / f"out.{fmt}", tmp_path / "state.json"
    args = [share(sim), "--sort=_id", f"--format={fmt}", "-o", str(out), "--state", str(state)]
    runs = kill_and_resume_until_done(sim, args, seed=SEEDS[fmt])
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
    written = out.read_bytes()
    sim.stats.reset()
    again = run(args)  # a finished run does nothing more
    assert again.code == 0, again.stderr
    assert out.read_bytes() == written
    if fmt != "jsonl":  # a JSON-lines file sorted by _id is a sync: it asks for newer events
        assert "already complete" in again.stderr
        assert sim.stats.requests["post"] == 0


def test_interrupted_run_resumes_exactly_once(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(events=2000, page_max=400)
    out, state = tmp_path / "out.json", tmp_path / "state.json"
    args = [share(sim), "--sort=_id", "-o", str(out), "--state", str(state)]
    held = HeldJobs(sim, let_through=1)  # the second page's job stays pending
    with start(args) as child:
        wait_until(lambda: held.held >= 1 and saved_state(state).get("pages", 0) >= 1,
                   "the first page recorded in the state", child=child)
        assert child.stop(signal.SIGTERM) == 130, child.stderr_text()
    assert not out.exists()  # a JSON file appears only when complete
    recorded = json.loads(state.read_text())
    assert recorded["pages"] == 1 and recorded["events"] == 400
    held.release()
    sim.stats.reset()
    done = run(args)
    assert done.code == 0, done.stderr
    assert json.loads(out.read_bytes()) == sim.share_events("demo")
    assert sim.stats.requests["results"] == 4  # no page fetched twice


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


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_complete_state_with_the_part_file_left_finishes_it(make_sim: Any, tmp_path: Any,
                                                                fmt: str) -> None:
    sim = make_sim(events=700, page_max=300)
    out, state = tmp_path / f"out.{fmt}", tmp_path / "state.json"
    args = [share(sim), "--sort=_id", f"--format={fmt}", "-o", str(out), "--state", str(state)]
    first = run(args)
    assert first.code == 0, first.stderr
    whole = out.read_bytes()
    # as if the run had stopped after recording "complete" and before renaming the file
    os.rename(out, str(out) + ".part")
    assert json.loads(state.read_text())["complete"] is True
    sim.stats.reset()
    again = run(args)
    assert again.code == 0, again.stderr
    assert out.read_bytes() == whole
    assert not os.path.exists(str(out) + ".part")
    assert sim.stats.requests["post"] == 0  # nothing asked again
