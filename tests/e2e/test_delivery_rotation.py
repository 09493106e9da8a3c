"""A share's file moved away (logrotate) while a destination is down: once it is back, it
delivers the rest of the moved file, then the new one, exactly the record's events once each
after dropping duplicates by key. The run keeps the moved file open (logrotate may compress
and remove it meanwhile); after a restart it finds it beside the path by its device and inode."""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from processes import Child, wait_until  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.rsyslog import Rsyslog  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .deliveries import ENV, Record, check, from_hec, from_rsyslog, positions, sync_config  # noqa: E402
from .helpers import command, saved_state  # noqa: E402

TOKEN = "rotation-hec-token"


def at(state: Path, written: int, *caught_up: str) -> Callable[[], bool]:
    """The record holds ``written`` events and each of ``caught_up`` has them all."""

    def check() -> bool:
        events, where = positions(state)
        return events == written and all(where.get(n, {}).get("seq") == written
                                         for n in caught_up)

    return check


def service(config: Path) -> Child:
    return Child(command() + ["sync", str(config)], env=ENV)


@pytest.mark.parametrize("how", ["moved, then removed while held open",
                                 "moved while killed, found again after restarts"])
def test_a_lagging_destination_delivers_the_moved_file_then_the_new_one(
        make_sim: Any, tmp_path: Path, how: str) -> None:
    if rsyslog_receiver.missing(["relp"]):
        pytest.skip(rsyslog_receiver.missing(["relp"]))
    sim = make_sim(shares=1, events=200, page_max=50)
    state, live, moved = tmp_path / "s1.state", tmp_path / "s1.jsonl", tmp_path / "s1.jsonl.1"
    kept = tmp_path / "kept" / "s1.jsonl.1"  # a copy of the moved file, for the final check
    kept.parent.mkdir()
    (tmp_path / "token").write_text(TOKEN + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp"]) as relp, HecReceiver(token=TOKEN) as hec:
        config = sync_config(
            tmp_path, {"s1": f"{sim.url}/shares/v2/async/s1"},
            {"siem": f'url = "{relp.url("relp")}"',
             "splunk": f'url = "hec+http://127.0.0.1:{hec.port}"\ntoken_file = "token"\n'
                       "ack_poll_interval = 0.05"},
            deliver=["siem", "splunk"], interval=0.2)
        first = service(config)
        try:
            wait_until(at(state, 200, "siem", "splunk"), "both caught up", child=first)
            relp.kill()  # down from here on
            sim.append_events("s1", 100)
            wait_until(at(state, 300, "splunk"), "300 events, the HEC's", child=first)
            if how.startswith("moved, then removed"):
                live.rename(moved)  # logrotate's move; the service goes on
                sim.append_events("s1", 100)
                wait_until(lambda: at(state, 400, "splunk")() and saved_state(state)[
                    "deliveries"]["segments"], "the move noticed, the new file filled",
                    child=first)
                shutil.copyfile(moved, kept)
                moved.unlink()  # compressed and removed: the run still holds it open
                running = first
            else:
                first.kill()  # kill -9, then the file moved while nothing runs
                live.rename(moved)
                shutil.copyfile(moved, kept)
                second = service(config)
                try:
                    sim.append_events("s1", 100)
                    wait_until(lambda: at(state, 400, "splunk")() and saved_state(state)[
                        "deliveries"]["segments"], "the move found, the new file filled",
                        child=second)
                finally:
                    second.kill()  # kill -9 again: the moved file is to be found once more
                    second.close()
                running = service(config)
            try:
                assert positions(state)[1]["siem"]["seq"] == 200  # it waited all along
                relp.start()  # back
                wait_until(at(state, 400, "siem", "splunk"), "the moved file, then the new "
                                                             "one, delivered", child=running)
                running.send_signal(signal.SIGTERM)
                assert running.wait() == 0, running.stderr_text()
                assert "Traceback" not in running.stderr_text()
            finally:
                running.close()
        finally:
            first.close()
        assert saved_state(state)["deliveries"]["segments"] == []  # the moved file let go
        record = Record.of(tmp_path, "s1", files=[kept, live])
        assert [e["uuid"] for e in record.events] == [e["uuid"] for e in
                                                      sim.share_events("s1")]
        assert len(live.read_text().splitlines()) == 100
        records = {record.prefix: record.events}
        relp.wait_for(400)
        for figures in (check(from_rsyslog(relp), records, "relp"),
                        check(from_hec(hec), records, "hec")):
            assert not figures.problems, figures.summary()
