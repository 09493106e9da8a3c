"""Every usage example of the seed, word for word, against the simulator; and the basics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import run, share


def by_uuid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda event: json.dumps(event, sort_keys=True))


def times(events: list[dict[str, Any]]) -> list[str]:
    return [event["observation time"] for event in events]


@pytest.mark.parametrize("entry", ["async", "installed", "module"])
def test_all_events_of_an_api_share(sim: Any, entry: str) -> None:
    done = run([share(sim)], entry=entry)
    assert done.code == 0, done.stderr
    expected = sim.share_events("demo")
    assert len(done.events) == len(expected)
    assert by_uuid(done.events) == by_uuid(expected)
    assert times(done.events) == sorted(times(expected))  # time order by default
    assert done.stderr == ""  # nothing left: no token line, no noise in a pipe


def test_all_events_of_a_notification_share(sim: Any) -> None:
    done = run([share(sim, "notify", "/1")])
    assert done.code == 0, done.stderr
    assert by_uuid(done.events) == by_uuid(sim.share_events("notify/1"))


def test_event_count(sim: Any) -> None:
    done = run([share(sim, "demo", "/count")])
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout) == {"count": len(sim.share_events("demo"))}


def test_notification_count(sim: Any) -> None:
    done = run([share(sim, "notify", "/0/count")])
    assert json.loads(done.stdout) == {"count": len(sim.share_events("notify/0"))}


def test_time_range(sim: Any) -> None:
    events = sim.share_events("demo")
    ordered = sorted(times(events))
    first, last = ordered[len(ordered) // 4][:10], ordered[len(ordered) // 2][:10]
    done = run([share(sim), f"--start={first}", f"--end={last}"])
    assert done.code == 0, done.stderr
    expected = [e for e in events if first <= e["observation time"][:10] < last]
    assert expected and by_uuid(done.events) == by_uuid(expected)


def test_limit_reverse_gives_the_newest(sim: Any) -> None:
    done = run([share(sim), "--limit=100", "--reverse"])
    assert done.code == 0, done.stderr
    newest = sorted(times(sim.share_events("demo")), reverse=True)[:100]
    assert times(done.events) == newest
    token = done.last_stderr_line
    assert token and token != "None"  # more events are left: the token is the last line


def test_limit_token_projection(sim: Any) -> None:
    first = run([share(sim), "--limit=1000"])
    token = first.last_stderr_line
    done = run([share(sim), "--limit=10000", f"--token={token}",
                "--projection=feed,observation time"])
    assert done.code == 0, done.stderr
    assert all(set(event) <= {"feed", "observation time"} for event in done.events)
    assert len(first.events) + len(done.events) == len(sim.share_events("demo"))
    assert times(first.events) + times(done.events) == sorted(times(sim.share_events("demo")))
    assert done.stderr == ""  # everything was downloaded: no token


def test_token_continuation_covers_everything_once(sim: Any) -> None:
    seen: list[dict[str, Any]] = []
    token = None
    for _ in range(10):
        args = [share(sim), "--limit=700"] + ([f"--token={token}"] if token else [])
        done = run(args)
        assert done.code == 0, done.stderr
        seen += done.events
        if not done.stderr:
            break
        token = done.last_stderr_line
    assert by_uuid(seen) == by_uuid(sim.share_events("demo"))


def test_sync_url_and_apikey_in_url(sim: Any) -> None:
    done = run([f"{sim.url}/shares/v2/demo?apikey=demo-key", "--limit=5"], apikey=None)
    assert done.code == 0, done.stderr
    assert len(done.events) == 5
    done = run([f"{sim.url}/shares/demo/count?apikey=demo-key"], apikey=None)
    assert json.loads(done.stdout) == {"count": len(sim.share_events("demo"))}


def test_filter_and_count_agree(sim: Any) -> None:
    events = sim.share_events("demo")
    kind = events[0]["type"]
    rule = f'type="{kind}"'
    done = run([share(sim), f"--filter={rule}"])
    counted = run([share(sim, "demo", "/count"), "-q", rule])
    expected = [e for e in events if e["type"] == kind]
    assert by_uuid(done.events) == by_uuid(expected)
    assert json.loads(counted.stdout) == {"count": len(expected)}


def test_short_options(sim: Any) -> None:
    done = run([share(sim), "-n", "3", "-p", "feed", "--sort", "_id"])
    assert done.code == 0, done.stderr
    assert done.events == [{"feed": e["feed"]} for e in sim.share_events("demo")[:3]]


def test_limit_above_a_page_is_split(make_sim: Any) -> None:
    sim = make_sim(events=2500, page_max=1000)
    done = run([share(sim), "--limit=2200", "--sort=_id"])
    assert done.code == 0, done.stderr
    assert done.events == sim.share_events("demo")[:2200]
    assert done.last_stderr_line  # 300 left
