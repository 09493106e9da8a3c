"""Events a destination rejects for good (larger than its ``max_message_size``, a request the HEC
answers 413 for that event alone, an event the HEC finds invalid) land once in the
destination's dead-letter file (``OUTPUT_STEM.DEST.dead.jsonl``: key, destination, reason, the
event), are counted in ``hubasync_dead_letters_total`` and the status, and every other event is
delivered."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from processes import Child, wait_until  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog, sd_key  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .deliveries import ENV, positions, sync_config  # noqa: E402
from .helpers import command, run, share  # noqa: E402

TOKEN = "dead-letter-hec-token"
BIG = 12_000  # bytes of an event too large for both destinations below
INVALID = b'{"uuid":"not-json-0001","note":"an invalid escape \\q the hub passed on"}'


def add_rejected_events(sim: Any, name: str) -> List[bytes]:
    """Three events too large for the destinations and one that is not valid JSON, inserted
    among the share's events; returns them in the order inserted."""
    share = sim.dataset.shares[name]
    model = json.loads(share.blobs[0])
    odd = [json.dumps(dict(model, uuid=f"big-{n}", padding="x" * BIG),
                      separators=(",", ":")).encode() for n in range(3)]
    odd.insert(2, INVALID)
    now = int(time.time())
    for blob in odd:
        share.extend([blob], [now])
        sim.append_events(name, 40)
    return odd


def lines(path: Path) -> List[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def dead_letters(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in lines(path)]


def key_of(record: List[bytes], blob: bytes, prefix: str) -> str:
    return f"{prefix}-{record.index(blob)}"


def test_rejected_events_land_once_in_the_dead_letter_files_and_are_counted(
        make_sim: Any, tmp_path: Path) -> None:
    if rsyslog_receiver.missing(["relp"]):
        pytest.skip(rsyslog_receiver.missing(["relp"]))
    sim = make_sim(shares=1, events=120, page_max=50)
    odd = add_rejected_events(sim, "s1")
    (tmp_path / "token").write_text(TOKEN + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp"]) as relp, \
            HecReceiver(token=TOKEN, max_content_length=8192) as hec:
        config = sync_config(
            tmp_path, {"s1": f"{sim.url}/shares/v2/async/s1"},
            {"siem": f'url = "{relp.url("relp")}"\nmax_message_size = 8192',
             "splunk": f'url = "hec+http://127.0.0.1:{hec.port}"\ntoken_file = "token"\n'
                       "max_batch_bytes = 8192\nack_poll_interval = 0.05"},
            deliver=["siem", "splunk"], extra='metrics = "127.0.0.1:0"')
        with Child(command() + ["sync", str(config)], env=ENV) as service:
            port = wait_until(lambda: re.search(r"address=http://[^\s:]+:(\d+)/metrics",
                                                service.stderr_text()),
                              "the metrics address", child=service)[1]
            total = 120 + 4 + 4 * 40
            wait_until(lambda: positions(tmp_path / "s1.state")[0] == total and all(
                p["seq"] == total for p in positions(tmp_path / "s1.state")[1].values()),
                "every event through both destinations", child=service)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
                metrics = answer.read().decode()
            shown = run(["status", str(config)]).stdout.decode()
            service.send_signal(signal.SIGTERM)
            assert service.wait() == 0, service.stderr_text()
            log = service.stderr_text()
        record = lines(tmp_path / "s1.jsonl")
        prefix = json.loads((tmp_path / "s1.state").read_text())["fingerprint"][:16]
        delivered = relp.wait_for(total - 3)
        indexed = hec.events()
    assert len(record) == total and all(blob in record for blob in odd)
    big = [key_of(record, blob, prefix) for blob in odd if blob != INVALID]
    invalid = key_of(record, INVALID, prefix)

    siem = dead_letters(tmp_path / "s1.siem.dead.jsonl")
    assert [d["key"] for d in siem] == big  # once each, in order
    assert all(d["destination"] == "siem" and "exceeds" in d["reason"]
               and d["event"]["uuid"].startswith("big-") for d in siem), siem[0]["reason"]
    assert sorted(sd_key(m["sd"]) for m in delivered) == sorted(
        f"{prefix}-{n}" for n in range(total) if f"{prefix}-{n}" not in big)

    splunk = dead_letters(tmp_path / "s1.splunk.dead.jsonl")
    assert [d["key"] for d in splunk] == big[:2] + [invalid] + big[2:]
    assert [d.get("event_text") for d in splunk if d["key"] == invalid] == [INVALID.decode()]
    assert all("413" in d["reason"] for d in splunk if d["key"] != invalid), splunk
    assert "Invalid data format" in [d for d in splunk if d["key"] == invalid][0]["reason"]
    keys = [e["fields"]["hubasync_key"] for e in indexed]
    assert sorted(set(keys)) == sorted(f"{prefix}-{n}" for n in range(total)
                                       if f"{prefix}-{n}" not in big + [invalid])

    state = json.loads((tmp_path / "s1.state").read_text())["deliveries"]["positions"]
    assert (state["siem"]["dead"], state["splunk"]["dead"]) == (3, 4)
    assert 'hubasync_dead_letters_total{share="s1",destination="siem"} 3' in metrics
    assert 'hubasync_dead_letters_total{share="s1",destination="splunk"} 4' in metrics
    assert re.search(r"-> siem\s.*3 dead letters", shown) and re.search(
        r"-> splunk\s.*4 dead letters", shown), shown
    assert log.count('msg="dead letters"') >= 2


def test_the_command_names_its_dead_letter_files_after_the_output_and_destination(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=60, page_max=100)
    add_rejected_events(sim, "demo")
    with HecReceiver(token=TOKEN, max_content_length=8192) as hec:
        done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                    "--state", str(tmp_path / "out.state"), "--to",
                    f"hec+http://127.0.0.1:{hec.port}?token_env=HEC_TOKEN&max_batch_bytes=8192"],
                   env={"HEC_TOKEN": TOKEN})
        assert done.code == 0, done.stderr
        # the events before an invalid one in its request may be indexed twice, same key
        assert len({e["fields"]["hubasync_key"] for e in hec.events()}) == 60 + 4 * 40
    dead = dead_letters(tmp_path / "out.hec1.dead.jsonl")
    assert [d.get("event", {}).get("uuid") or d["event_text"] for d in dead] == [
        "big-0", "big-1", INVALID.decode(), "big-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "out.hec1.dead.jsonl", "out.jsonl", "out.state"]  # the locks removed at the end
