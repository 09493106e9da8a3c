"""Answers a well-behaved hub may give that the simulator does not, and hubs that break the rules:
each run through the command line against ``tests/fakehub.py``."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from fakehub import SHARE, TINY_EVENTS, FakeHub, reply, tiny_share

from .helpers import one_line, run

FOUR = TINY_EVENTS + [{"observation time": "2020-10-01 00:00:03Z", "feed": "delta",
                       "ip": "192.0.2.4"}]


def test_status_303_see_other_leads_to_the_results() -> None:
    routes = tiny_share()
    routes[("GET", f"{SHARE}/jobs/1")] = reply(303, Location=f"{SHARE}/results/1")
    with FakeHub(routes=routes) as hub:
        done = run([hub.url + SHARE], apikey="key")
        paths = [seen.path for seen in hub.requests]
    assert done.code == 0, done.stderr
    assert done.events == TINY_EVENTS
    assert paths == [SHARE, f"{SHARE}/jobs/1", f"{SHARE}/results/1"]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_more_events_than_asked_for_is_a_hub_failure(fmt: str, tmp_path: Any) -> None:
    routes = tiny_share(events=FOUR)  # four events, whatever the limit says
    with FakeHub(routes=routes) as hub:
        out = tmp_path / f"out.{fmt}"
        done = run([hub.url + SHARE, "--limit=3", f"--format={fmt}", "-o", str(out)],
                   apikey="key")
        limits = [seen.target for seen in hub.requests if seen.method == "POST"]
    assert done.code == 6, done.stderr
    assert "more than the 3 events" in done.stderr
    assert "Traceback" not in done.stderr
    assert all("limit=3" in target for target in limits), limits
    if fmt == "jsonl" and out.exists():  # nothing of the page that broke the limit is kept
        assert out.read_bytes() == b""
    else:
        assert not out.exists()


def test_as_many_events_as_asked_for_is_fine() -> None:
    with FakeHub(routes=tiny_share()) as hub:
        done = run([hub.url + SHARE, "--limit=3"], apikey="key")
    assert done.code == 0, done.stderr
    assert done.events == TINY_EVENTS


def _echoing_401(key: str) -> Dict[Any, Any]:
    """A hub whose 401 body (and a header) echo the key it was sent, as some gateways do."""
    body = json.dumps({"title": "401 Unauthorized",
                       "description": f"invalid API key {key} (token {key})"}).encode()
    answer = reply(401, body, Content_Type="application/json", WWW_Authenticate=f"token {key}")
    return {("POST", SHARE): answer}


@pytest.mark.parametrize("debug", [[], ["--debug"]])
@pytest.mark.parametrize("given", ["env", "option", "url"])
def test_a_401_body_echoing_the_key_never_shows_it(debug: List[str], given: str,
                                                   tmp_path: Any) -> None:
    key = "Sup3r-Secret-Key-4242"
    with FakeHub(routes=_echoing_401(key)) as hub:
        if given == "env":
            done = run([hub.url + SHARE, *debug], apikey=key)
        elif given == "option":
            done = run([hub.url + SHARE, f"--apikey={key}", *debug], apikey=None)
        else:
            done = run([f"{hub.url}/shares/v2/demo?apikey={key}", *debug], apikey=None)
        sent = [seen.headers.get("authorization") for seen in hub.requests]
    assert sent and all(value == f"token {key}" for value in sent)  # the key was really used
    assert done.code == 3, done.stderr
    assert key not in done.stderr, done.stderr
    assert key.encode() not in done.stdout
    if debug:
        assert "401" in done.stderr  # the trace is there, with the key taken out
    else:
        assert "key" in one_line(done.stderr)


@pytest.mark.parametrize("path, status, phase", [
    (SHARE, 409, "query"),
    (f"{SHARE}/jobs/1", 418, "status request"),
    (f"{SHARE}/results/1", 422, "results request"),
])
def test_an_unexpected_4xx_ends_the_run_at_once_with_exit_6(path: str, status: int,
                                                            phase: str) -> None:
    routes = tiny_share()
    method = "POST" if path == SHARE else "GET"
    routes[(method, path)] = reply(status, b'{"title": "no such thing here"}',
                                   Content_Type="application/json")
    with FakeHub(routes=routes) as hub:
        done = run([hub.url + SHARE, "--retries=5"], apikey="key")
        asked = [(seen.method, seen.path) for seen in hub.requests]
    assert done.code == 6, done.stderr
    assert one_line(done.stderr) == (
        f"hubasync: unexpected answer to the {phase}: HTTP {status}: no such thing here")
    steps = [("POST", SHARE), ("GET", f"{SHARE}/jobs/1"), ("GET", f"{SHARE}/results/1")]
    assert asked == steps[: steps.index((method, path)) + 1]  # asked once, never again
