"""A receiver down for a long while ("minutes", compressed to half a minute), then back, while
``hubasync sync`` follows a growing share: no event is dropped; while it is down, fetching is
held back within ``max_lag`` (the output holds at most ``max_lag`` and one page more events than
its position) and the other destinations of the share get every event of the output; status
and /metrics show its lag and retries meanwhile; it catches up once back. The HEC receiver
going down and coming back on the same port, likewise."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from processes import Child, refused_port, wait_until  # noqa: E402
from receivers import kafka as kafka_receiver  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .deliveries import (  # noqa: E402
    ENV,
    Record,
    check,
    from_hec,
    from_kafka,
    positions,
    show,
    sync_config,
    written_out,
)
from .helpers import HeldJobs, command, one_line, run, share  # noqa: E402

MAX_LAG = 300
PAGE = 100
OUTAGE = 30.0  # seconds the receiver stays down once fetching is held back
TOKEN = "outage-hec-token-77c1"


def metric(port: str, name: str, destination: str) -> Optional[float]:
    """The value of ``name`` for share s1 and ``destination`` in /metrics (None: absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and f'destination="{destination}"' in line \
                and 'share="s1"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_receiver_down_for_long_holds_fetching_back_within_max_lag_and_loses_nothing(
        make_sim: Any, tmp_path: Path, request: Any) -> None:
    for missing in (rsyslog_receiver.missing(["relp"]), kafka_receiver.missing()):
        if missing:
            pytest.skip(missing)
    sim = make_sim(shares=1, events=200, page_max=PAGE, grow=40)
    state = tmp_path / "s1.state"
    hec = HecReceiver(token=TOKEN).start()
    hec.config.port = hec.port  # started again on the same port
    (tmp_path / "token").write_text(TOKEN + "\n")
    samples: List[Dict[str, int]] = []

    def sample() -> Dict[str, int]:
        """How far each destination is behind the output, now (kept for the bound's check)."""
        written, at = positions(state)
        behind = {name: written - p["seq"] for name, p in at.items()}
        behind["written"] = written
        if at:
            samples.append(behind)
        return behind

    with Rsyslog(tmp_path / "rsyslog", ["relp"], queue="disk") as relp, \
            kafka_receiver.MockKafka() as cluster:
        try:
            config = sync_config(
                tmp_path, {"s1": f"{sim.url}/shares/v2/async/s1"},
                {"siem": f'url = "{relp.url("relp")}"',  # first: it must not hold the others
                 "bus": f'url = "{cluster.url("events")}"',
                 "splunk": f'url = "hec+http://127.0.0.1:{hec.port}"\ntoken_file = "token"\n'
                           "ack_poll_interval = 0.05"},
                deliver=["siem", "bus", "splunk"], interval=0.2,
                extra='metrics = "127.0.0.1:0"', share_extra=f"max_lag = {MAX_LAG}")
            with Child(command() + ["sync", str(config)], env=ENV) as service:
                port = wait_until(lambda: re.search(r"address=http://[^\s:]+:(\d+)/metrics",
                                                    service.stderr_text()),
                                  "the metrics address", child=service)[1]
                wait_until(lambda: sample().get("written", 0) >= 200 and all(
                    sample().get(n, 1) == 0 for n in ("siem", "bus", "splunk")),
                           "every destination caught up", child=service)

                relp.kill()  # kill -9: down
                held = wait_until(lambda: sample().get("siem", 0) >= MAX_LAG and sample(),
                                  "fetching held back by the receiver that is down",
                                  child=service)
                down_since = time.monotonic()
                wait_until(lambda: sample()["bus"] == 0 and sample()["splunk"] == 0,
                           "the other destinations given every event of the output",
                           child=service)
                wait_until(lambda: (metric(port, "hubasync_delivery_retries_total", "siem")
                                    or 0) >= 2, "retries counted in /metrics", child=service)
                lag = metric(port, "hubasync_delivery_lag_events", "siem")
                assert lag is not None and MAX_LAG <= lag <= MAX_LAG + PAGE, lag
                shown = wait_until(lambda: re.search(
                    r"-> siem\s+behind\s.*\s(\d+) events\s+.*connection refused; ([\d,]+) retries",
                    run(["status", str(config)]).stdout.decode()), "the status showing it")
                assert MAX_LAG <= int(shown[1]) <= MAX_LAG + PAGE, shown[0]
                while time.monotonic() - down_since < OUTAGE:  # down "for minutes"
                    behind = sample()["siem"]
                    assert behind <= MAX_LAG + PAGE, f"the output ran {behind} events ahead"
                    assert service.poll() is None, service.stderr_text()
                    time.sleep(0.1)
                stalled = sample()["written"]

                relp.start()  # back: it catches up, and fetching goes on
                wait_until(lambda: sample()["siem"] == 0 and sample()["written"] > stalled + 80,
                           "the receiver caught up and fetching going on", child=service)

                hec.stop()  # the HEC goes down too, then comes back on its port
                wait_until(lambda: sample()["splunk"] >= 100, "the HEC lagging",
                           child=service)
                hec.start()
                wait_until(lambda: sample()["splunk"] == 0 and sample()["siem"] == 0,
                           "the HEC caught up", child=service)
                service.send_signal(signal.SIGTERM)
                assert service.wait() == 0, service.stderr_text()
                assert "Traceback" not in service.stderr_text()
            sim.stop_growing()
            final = run(["sync", str(config), "--once"], timeout=300)
            assert final.code == 0, final.stderr
            record = Record.of(tmp_path, "s1")
            assert [e["uuid"] for e in record.events] == [e["uuid"] for e in
                                                          sim.share_events("s1")]
            records = {record.prefix: record.events}
            figures = [check(written_out(relp, len(record.events)), records, "relp"),
                       check(from_kafka(cluster.bootstrap, "events"), records, "kafka"),
                       check(from_hec(hec), records, "hec")]
        finally:
            hec.stop()
    worst = max(s["siem"] for s in samples)
    others = max(max(s["bus"], s["splunk"]) for s in samples if s["siem"] >= MAX_LAG)
    show(request, f"receiver down {OUTAGE:g} s, max_lag {MAX_LAG}, pages of {PAGE}: held back "
                  f"at {held['siem']}, at most {worst} events behind over {len(samples)} "
                  f"samples (bound {MAX_LAG + PAGE}); the others at most {others} behind while "
                  "it was; " + " | ".join(f.summary() for f in figures))
    assert worst <= MAX_LAG + PAGE, f"the output ran {worst} events ahead of the destination"
    for found in figures:
        assert not found.problems, found.summary()


def test_positions_moved_while_the_output_is_closed_are_saved(make_sim: Any,
                                                              tmp_path: Path) -> None:
    """A share held back by a destination that is down lets go of its file while it waits
    (the fourth backoff is over 2 s); the destination back, it catches up before any page: the
    positions are saved then, not only when the next page opens (here pending for good)."""
    if rsyslog_receiver.missing(["relp"]):
        pytest.skip(rsyslog_receiver.missing(["relp"]))
    sim = make_sim(shares=1, events=100, page_max=100)
    HeldJobs(sim, let_through=1)  # the first page only: the next pass waits on the hub
    state = tmp_path / "s1.state"
    with Rsyslog(tmp_path / "rsyslog", ["relp"]) as relp:
        relp.kill()  # down, its port known
        config = sync_config(tmp_path, {"s1": f"{sim.url}/shares/v2/async/s1"},
                             {"siem": f'url = "{relp.url("relp")}"'}, deliver=["siem"],
                             interval=0.2, share_extra="max_lag = 50")
        with Child(command() + ["sync", str(config)], env=ENV) as service:
            wait_until(lambda: service.stderr_text().count('msg="delivery failed"') >= 4,
                       "four failures, the file let go", child=service)
            relp.start()
            wait_until(lambda: positions(state)[1].get("siem", {}).get("seq") == 100,
                       "the position saved, no page opened", child=service)
            assert sim.stats.requests["results"] == 1
            service.send_signal(signal.SIGTERM)
            assert service.wait() == 0, service.stderr_text()
        assert len(relp.wait_for(100)) == 100


def test_the_command_gives_a_destination_up_once_the_others_had_their_batch(
        make_sim: Any, tmp_path: Path) -> None:
    """A destination that fails (--retries times in a row, or for good at once: a certificate
    it is not trusted) ends the command, exit 6, once the other destinations had their batch
    of that round: listed first, it holds none back."""
    sim = make_sim(events=450, page_max=100)
    with refused_port() as port, HecReceiver(token=TOKEN) as hec:
        base = [share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                "--state", str(tmp_path / "out.state"), "--retries", "2"]
        hec_url = f"hec+http://127.0.0.1:{hec.port}?token_env=HEC_TOKEN&ack_poll_interval=0.05"
        done = run(base + ["--to", f"relp://127.0.0.1:{port}", "--to", hec_url],
                   env={"HEC_TOKEN": TOKEN})
        indexed = from_hec(hec)
    assert done.code == 6, done.stderr
    assert "relp1: gave up after 3 failed deliveries" in one_line(done.stderr, then_token=True)
    written, at = positions(tmp_path / "out.state")
    assert at["relp1"]["seq"] == 0 and at["relp1"]["retries"] == 3
    prefix = Record.of(tmp_path, "out").prefix
    assert at["hec1"]["seq"] == written  # its backoffs gave the other every page fetched
    assert {m.key for m in indexed} == {f"{prefix}-{n}" for n in range(written)}


def test_a_destination_refused_for_good_ends_the_command_after_the_others_batch(
        make_sim: Any, tmp_path: Path) -> None:
    from receivers.certs import make_certs

    certs = make_certs(str(tmp_path / "certs"))
    sim = make_sim(events=450, page_max=100)
    with HecReceiver(token=TOKEN, tls_cert=certs.server_cert, tls_key=certs.server_key) as bad, \
            HecReceiver(token=TOKEN) as good:
        done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                    "--state", str(tmp_path / "out.state"),
                    "--to", f"hec+https://127.0.0.1:{bad.port}?token_env=HEC_TOKEN"
                            f"&cacert={certs.other_ca}",
                    "--to", f"hec+http://127.0.0.1:{good.port}?token_env=HEC_TOKEN"
                            "&ack_poll_interval=0.05"], env={"HEC_TOKEN": TOKEN})
        indexed = from_hec(good)
    assert done.code == 6 and "not trusted" in one_line(done.stderr, then_token=True)
    at = positions(tmp_path / "out.state")[1]
    assert at["hec1"]["seq"] == 0 and at["hec2"]["seq"] > 0 and bad.events() == []
    assert len(indexed) == at["hec2"]["seq"]


def test_sync_once_waits_for_its_destinations_and_gives_one_up_after_its_retries(
        make_sim: Any, tmp_path: Path) -> None:
    """``sync --once`` is one pass, as the command's: it ends when every destination has every
    event, or gives a failing one up after ``retries`` (exit 6): never exit 0 with events left
    behind."""
    sim = make_sim(shares=1, events=150, page_max=100)
    with refused_port() as port, HecReceiver(token=TOKEN) as hec:
        (tmp_path / "token").write_text(TOKEN + "\n")
        config = sync_config(tmp_path, {"s1": f"{sim.url}/shares/v2/async/s1"},
                             {"siem": f'url = "relp://127.0.0.1:{port}"',
                              "splunk": f'url = "hec+http://127.0.0.1:{hec.port}"\n'
                                        'token_file = "token"\nack_poll_interval = 0.05'},
                             deliver=["siem", "splunk"], share_extra="retries = 1")
        done = run(["sync", str(config), "--once"])
        indexed = from_hec(hec)
    assert done.code == 6, done.stderr
    failed = [line for line in done.stderr.splitlines() if 'msg="pass failed"' in line]
    assert len(failed) == 1 and "siem: gave up after 2 failed deliveries" in failed[0], \
        done.stderr
    at = positions(tmp_path / "s1.state")[1]
    assert at["siem"]["seq"] == 0 and at["splunk"]["seq"] == 150 and len(indexed) == 150
