"""``kill -9`` at random moments while shares grow and every event is delivered to rsyslog over
RELP (its queue on disk, synced: what keeps an acknowledged message across its own kill -9), to
Kafka (librdkafka's mock cluster) and to the simulated Splunk HEC. In the end every event
reached every destination at least once, each duplicate is the same event under the same key,
dropping the duplicates by key gives exactly the hub's events in order, and the file holds each
event exactly once. The figures are printed (events, duplicates by key, losses)."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from processes import Child, wait_until  # noqa: E402
from receivers import kafka as kafka_receiver  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .deliveries import (  # noqa: E402
    ENV,
    Figures,
    Record,
    check,
    from_hec,
    from_kafka,
    show,
    sync_config,
    written_out,
)
from .helpers import command, run, share  # noqa: E402

SEED = 20260421
ROUNDS = 50
TOKEN = "kill-9-hec-token-5d1e"


def needs_receivers() -> None:
    for missing in (rsyslog_receiver.missing(["relp"]), kafka_receiver.missing()):
        if missing:
            pytest.skip(missing)


def restartable_hec() -> HecReceiver:
    """A simulated HEC that starts again on the same port (its events kept)."""
    hec = HecReceiver(token=TOKEN).start()
    hec.config.port = hec.port
    return hec


def killed_at_random(argv: List[str], rng: random.Random, env: Dict[str, str],
                     state: Path) -> None:
    """Start ``argv`` and kill -9 it: half the time at any moment from its start, half the
    time once it has started work (it saved ``state``), so that kills land in work too."""
    before = state.stat().st_mtime_ns if state.exists() else 0
    with Child(argv, env=env) as child:
        if rng.random() < 0.5:
            wait_until(lambda: (state.exists() and state.stat().st_mtime_ns != before)
                       or child.poll() is not None, "the child's first save")
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            time.sleep(rng.uniform(0.05, 1.2))
        child.kill()


def delivered_everywhere(figures: List[Figures]) -> str:
    return " | ".join(f.summary() for f in figures)


def test_sync_killed_50_times_delivers_every_event_and_repeats_only_by_key(
        make_sim: Any, tmp_path: Path, request: Any) -> None:
    needs_receivers()
    rng = random.Random(SEED)
    sim = make_sim(shares=2, events=150, page_max=40, grow=8)
    names = ("s1", "s2")
    hec = restartable_hec()
    (tmp_path / "token").write_text(TOKEN + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp"], queue="disk") as relp, \
            kafka_receiver.MockKafka() as cluster:
        try:
            config = sync_config(
                tmp_path, {name: f"{sim.url}/shares/v2/async/{name}" for name in names},
                {"siem": f'url = "{relp.url("relp")}"',
                 "bus": f'url = "{cluster.url("events")}"',
                 "splunk": f'url = "hec+http://127.0.0.1:{hec.port}"\ntoken_file = "token"\n'
                           "ack_poll_interval = 0.05"},
                deliver=["siem", "bus", "splunk"], interval=0.1)
            for number in range(ROUNDS):
                killed_at_random(command() + ["sync", str(config)], rng, ENV,
                                 tmp_path / f"{names[number % 2]}.state")
                if number % 10 == 9:  # the receivers go down too, now and then
                    relp.kill()
                    relp.start()
                elif number % 10 == 4:
                    hec.stop()
                    hec.start()
            sim.stop_growing()
            final = run(["sync", str(config), "--once"], timeout=300)
            assert final.code == 0, final.stderr
            records = {}
            for name in names:
                record = Record.of(tmp_path, name)
                hub = sim.share_events(name)
                assert [e["uuid"] for e in record.events] == [e["uuid"] for e in hub], \
                    f"{name}.jsonl does not hold the hub's events exactly once"
                records[record.prefix] = record.events
            total = sum(len(events) for events in records.values())
            figures = [check(written_out(relp, total), records, "relp (rsyslog, disk queue)"),
                       check(from_kafka(cluster.bootstrap, "events"), records, "kafka"),
                       check(from_hec(hec), records, "hec")]
        finally:
            hec.stop()
    show(request, f"kill -9 x{ROUNDS} (seed {SEED}), sync, 2 shares: "
                  + delivered_everywhere(figures))
    for found in figures:
        assert not found.problems, delivered_everywhere(figures)


def test_the_command_killed_while_following_delivers_every_event(
        make_sim: Any, tmp_path: Path, request: Any) -> None:
    needs_receivers()
    rng = random.Random(SEED + 1)
    sim = make_sim(events=150, page_max=40, grow=10)
    hec = restartable_hec()
    out, state = tmp_path / "out.jsonl", tmp_path / "out.state"
    with Rsyslog(tmp_path / "rsyslog", ["relp"], queue="disk") as relp, \
            kafka_receiver.MockKafka() as cluster:
        try:
            to = ["--to", relp.url("relp"), "--to", cluster.url("cli"),
                  "--to", f"hec+http://127.0.0.1:{hec.port}?token_env=HEC_TOKEN"
                          "&ack_poll_interval=0.05"]
            args = [share(sim), "--format=jsonl", "-o", str(out), "--state", str(state), *to]
            env = dict(ENV, HEC_TOKEN=TOKEN)
            for _ in range(15):
                killed_at_random(command() + args + ["--follow", "--interval", "0.1"], rng, env,
                                 state)
            sim.stop_growing()
            final = run(args + ["--sort", "_id"], env={"HEC_TOKEN": TOKEN}, timeout=300)
            assert final.code == 0, final.stderr
            assert TOKEN not in final.stderr
            record = Record.of(tmp_path, "out", state=state)
            assert [e["uuid"] for e in record.events] == [e["uuid"] for e in
                                                          sim.share_events("demo")]
            records = {record.prefix: record.events}
            figures = [check(written_out(relp, len(record.events)), records, "relp"),
                       check(from_kafka(cluster.bootstrap, "cli"), records, "kafka"),
                       check(from_hec(hec), records, "hec")]
        finally:
            hec.stop()
    show(request, "kill -9 x15, hubasync --follow --to x3: " + delivered_everywhere(figures))
    for found in figures:
        assert not found.problems, delivered_everywhere(figures)
    positions = json.loads(state.read_text())["deliveries"]["positions"]
    assert sorted(positions) == ["hec1", "kafka1", "relp1"]
    assert all(p["seq"] == len(record.events) for p in positions.values()), positions
