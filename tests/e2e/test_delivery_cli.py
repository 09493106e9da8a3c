"""``hubasync URL --to DEST``: the output's events delivered to real receivers, each position
in the state moved only over what the receiver acknowledged; bad destinations refused before
any request."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from receivers import kafka as kafka_receiver  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog, sd_key  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .helpers import run, share  # noqa: E402

TOKEN = "hec-token-0123456789"


def args(sim: Any, tmp_path: Path, *more: str) -> List[str]:
    return [share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
            "--state", str(tmp_path / "out.state"), *more]


def uuids(path: Path) -> List[str]:
    return [json.loads(line)["uuid"] for line in path.read_text().splitlines()]


def positions(tmp_path: Path) -> Dict[str, Any]:
    return json.loads((tmp_path / "out.state").read_text())["deliveries"]["positions"]


def test_relp_receives_every_event_with_its_key(make_sim: Any, tmp_path: Path) -> None:
    if rsyslog_receiver.missing(["relp"]):
        pytest.skip(rsyslog_receiver.missing(["relp"]))
    sim = make_sim(events=2500, page_max=1000)
    with Rsyslog(tmp_path / "rsyslog", ["relp"]) as receiver:
        done = run(args(sim, tmp_path, "--to", receiver.url("relp")))
        assert done.code == 0, done.stderr
        got = receiver.wait_for(2500)
    expected = uuids(tmp_path / "out.jsonl")
    assert [json.loads(m["msg"])["uuid"] for m in got] == expected
    keys = [sd_key(m["sd"]) for m in got]
    assert len(set(keys)) == 2500 and keys[0].endswith("-0") and keys[-1].endswith("-2499")
    assert positions(tmp_path)["relp1"]["seq"] == 2500
    assert positions(tmp_path)["relp1"]["acknowledged"] == 2500


def test_hec_and_a_second_run_deliver_only_what_is_new(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=1200, page_max=500)
    with HecReceiver(token=TOKEN).start() as hec:
        url = f"hec+http://127.0.0.1:{hec.port}"
        env = {"HEC_TOKEN": TOKEN}
        first = run(args(sim, tmp_path, "--to", f"{url}?token_env=HEC_TOKEN"), env=env)
        assert first.code == 0, first.stderr
        sim.append_events("demo", 300)
        second = run(args(sim, tmp_path, "--to", f"{url}?token_env=HEC_TOKEN"), env=env)
        assert second.code == 0, second.stderr
        events = hec.events()
    assert [e["event"]["uuid"] for e in events] == uuids(tmp_path / "out.jsonl")
    assert len(events) == 1500 and TOKEN not in first.stderr + second.stderr
    assert positions(tmp_path)["hec1"]["seq"] == 1500


def test_kafka_receives_every_event_keyed(make_sim: Any, tmp_path: Path) -> None:
    if kafka_receiver.missing():
        pytest.skip(kafka_receiver.missing())
    sim = make_sim(events=300, page_max=100)
    with kafka_receiver.MockKafka() as cluster:
        done = run(args(sim, tmp_path, "--to", cluster.url("events")))
        assert done.code == 0, done.stderr
        got = cluster.consume("events", 300)
    # partitions keep their own order only: put the events back in order by their keys
    ordered = sorted(got, key=lambda message: int(message[0].decode().rsplit("-", 1)[1]))
    assert [json.loads(value)["uuid"] for _, value in ordered] == uuids(tmp_path / "out.jsonl")
    assert len({key for key, _ in got}) == 300


@pytest.mark.parametrize("extra, problem", [
    (["--to", "relp://127.0.0.1:1?window=0"], "--to"),
    (["--to", "smoke://somewhere"], "unknown destination"),
    (["--to", "hec+https://hec.example:8088"], "token"),
])
def test_a_bad_destination_is_refused_before_any_request(make_sim: Any, tmp_path: Path,
                                                         extra: List[str], problem: str) -> None:
    sim = make_sim(events=10)
    done = run(args(sim, tmp_path, *extra))
    assert done.code == 2 and problem in done.stderr and done.stderr.count("\n") == 1
    assert sum(sim.stats.requests.values()) == 0


def test_to_needs_a_json_lines_output_with_a_state(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=10)
    done = run([share(sim), "--to", "relp://127.0.0.1:2514"])
    assert done.code == 2 and "--format jsonl" in done.stderr
