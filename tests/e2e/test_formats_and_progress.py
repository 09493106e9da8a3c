"""Formats as a user reads them, the progress line, and recovering from an invalid token."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fakehub import SHARE, FakeHub, reply, tiny_share

from .helpers import read_jsonl, run, share


def test_jsonl_to_stdout_is_one_event_a_line(sim: Any) -> None:
    done = run([share(sim), "--sort=_id", "--format=jsonl"])
    assert done.code == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert [json.loads(line) for line in lines] == sim.share_events("demo")


def test_csv_with_projection_keeps_its_columns_in_order(sim: Any, tmp_path: Any) -> None:
    out = tmp_path / "events.csv"
    done = run([share(sim), "--sort=_id", "--format=csv", "-o", str(out),
                "--projection=uuid,observation time,domain name"])
    assert done.code == 0, done.stderr
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["uuid", "observation time", "domain name"]
    events = sim.share_events("demo")
    assert len(rows) == len(events) + 1
    for row, event in zip(rows[1:], events):
        assert row[0] == event["uuid"] and row[1] == event["observation time"]
        value = event.get("domain name", "")
        assert row[2] == (json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                          if isinstance(value, list) else value)


def test_csv_without_projection_loses_no_key(sim: Any) -> None:
    done = run([share(sim), "--sort=_id", "--format=csv"])
    assert done.code == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode("utf-8"), newline="")))
    events = sim.share_events("demo")
    assert len(rows) == len(events)
    for row, event in zip(rows, events):
        extra = json.loads(row.pop("extra") or "{}")
        rebuilt = {k: v for k, v in row.items() if v != ""}
        rebuilt.update(extra)
        expected = {k: (json.dumps(v, separators=(",", ":"), ensure_ascii=False)
                        if isinstance(v, list) else v) for k, v in event.items() if v != ""}
        expected.update({k: v for k, v in event.items() if k in extra})
        assert rebuilt == expected


def test_forced_progress_in_a_pipe_shows_counts_without_a_count_job(sim: Any) -> None:
    done = run([share(sim), "--progress"])
    assert done.code == 0, done.stderr
    total = len(sim.share_events("demo"))
    assert f"{total:,} events" in done.stderr and "(100%)" not in done.stderr
    assert json.loads(done.stdout) and len(json.loads(done.stdout)) == total
    pages = -(-total // 1000)  # the fixture serves pages of 1000: one POST each, no count job
    assert sim.stats.requests["post"] == pages


def test_quiet_and_pipes_show_no_progress(sim: Any) -> None:
    assert run([share(sim), "--limit=10", "--quiet", "--sort=_id"]).stderr.count("\n") == 1
    assert run([share(sim)]).stderr == ""


def test_invalid_stored_token_is_reported_and_recover_goes_on(sim: Any, tmp_path: Any) -> None:
    out, state = tmp_path / "events.jsonl", tmp_path / "events.state"
    args = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(out), "--state", str(state),
            "--limit=1000"]
    assert run(args).code == 0
    saved = json.loads(state.read_text())
    assert saved["token"]  # 1000 of 2500: more is left
    saved["token"] = "no-longer-valid"
    state.write_text(json.dumps(saved))
    failed = run(args)
    assert failed.code == 5
    assert "--recover" in failed.stderr and "no-longer-valid" in failed.stderr
    assert len(read_jsonl(str(out))) == 1000  # nothing written, nothing lost
    recovered = run(args + ["--recover"])
    assert recovered.code == 0, recovered.stderr
    assert "starting again from" in recovered.stderr
    got = read_jsonl(str(out))
    assert got[:1000] == sim.share_events("demo")[:1000]
    last_time = got[999]["observation time"]
    later = [e for e in sim.share_events("demo") if e["observation time"] >= last_time]
    assert got[1000:] == later[:len(got) - 1000]  # from the last time on, by _id


def test_strict_refuses_what_the_structural_check_lets_through() -> None:
    key = "strict-key-1"
    routes = tiny_share(apikey=key)
    routes[("GET", f"{SHARE}/results/1")] = reply(200, b'[{"a":"1"},{"a":"2" x},{"a":"3"}]')
    with FakeHub(routes=routes) as fake:
        loose = run([fake.url + SHARE], apikey=key)
        strict = run([fake.url + SHARE, "--strict", "--retries=0"], apikey=key)
        as_csv = run([fake.url + SHARE, "--format=csv", "--retries=0"], apikey=key)
    assert loose.code == 0  # the structure is fine; a bare word inside an event is not seen
    assert strict.code == 6 and "invalid event" in strict.stderr
    assert as_csv.code == 6 and "invalid event" in as_csv.stderr  # CSV parses every event
