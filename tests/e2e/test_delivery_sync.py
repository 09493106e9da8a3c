"""``hubasync sync`` delivering its shares to real receivers: positions, metrics, status."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .helpers import run  # noqa: E402

TOKEN = "sync-hec-token-42"


def test_sync_once_delivers_every_share_and_status_shows_each_destination(
        make_sim: Any, tmp_path: Path) -> None:
    if rsyslog_receiver.missing(["relp"]):
        pytest.skip(rsyslog_receiver.missing(["relp"]))
    sim = make_sim(shares=2, events=700, page_max=250)
    with Rsyslog(tmp_path / "rsyslog", ["relp"]) as relp, HecReceiver(token=TOKEN).start() as hec:
        (tmp_path / "token").write_text(TOKEN + "\n")
        config = tmp_path / "hubasync.toml"
        config.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\n'
                          f'[destinations.siem]\nurl = "{relp.url("relp")}"\n'
                          f'[destinations.splunk]\nurl = "hec+http://127.0.0.1:{hec.port}"\n'
                          'token_file = "token"\n'
                          f'[shares.s1]\nurl = "{sim.url}/shares/v2/async/s1"\n'
                          'deliver = ["siem", "splunk"]\n'
                          f'[shares.s2]\nurl = "{sim.url}/shares/v2/async/s2"\n'
                          'deliver = ["splunk"]\n')
        done = run(["sync", str(config), "--once"])
        assert done.code == 0, done.stderr
        relp.wait_for(700)
        shown = run(["status", str(config)])
        indexed = hec.events()
    assert len(indexed) == 1400 and len(relp.messages()) == 700
    for name in ("s1", "s2"):
        state = json.loads((tmp_path / f"{name}.state").read_text())
        for position in state["deliveries"]["positions"].values():
            assert position["seq"] == 700 and position["acknowledged"] == 700
    assert shown.code == 0, shown.stderr
    rows = shown.stdout.decode()
    assert "-> siem" in rows and "-> splunk" in rows and "delivered" in rows
    assert TOKEN not in done.stderr + rows
