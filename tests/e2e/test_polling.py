"""Polls on time: the first status poll comes when the job is likely done."""

from __future__ import annotations

from typing import Any

from .helpers import run, share


def test_no_more_than_two_status_polls_per_page_on_average(make_sim: Any) -> None:
    sim = make_sim(events=4000, page_max=400, job_latency=0.2, retry_after=1.0)
    done = run([share(sim), "--sort=_id", "--format=jsonl"])
    assert done.code == 0, done.stderr
    assert len(done.stdout.splitlines()) == 4000
    pages = sim.stats.requests["results"]
    assert pages == 10
    assert sim.stats.requests["status"] <= 2 * pages


def test_next_query_is_posted_as_soon_as_the_results_answer(make_sim: Any) -> None:
    sim = make_sim(events=3000, page_max=1000)
    done = run([share(sim), "--sort=_id", "--format=jsonl", "--debug"])
    assert done.code == 0, done.stderr
    trace = [line for line in done.stderr.splitlines() if "> " in line]
    results = [i for i, line in enumerate(trace) if "/results/" in line]
    posts = [i for i, line in enumerate(trace) if "> POST" in line]
    assert len(posts) == 3 and len(results) == 3
    # each next query goes out right after the previous page's results were asked for
    assert posts[1] == results[0] + 1 and posts[2] == results[1] + 1
