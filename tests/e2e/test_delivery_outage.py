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

from processes import Child, wait_until  # noqa: E402
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
    from_rsyslog,
    positions,
    show,
    sync_config,
)
from .helpers import command, run  # noqa: E402

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
                    sample()
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
            wait_until(lambda: len({m.key for m in from_rsyslog(relp)}) >= len(record.events),
                       "rsyslog writing its queue out", timeout=120)
            figures = [check(from_rsyslog(relp), records, "relp"),
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
