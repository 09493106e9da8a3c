"""A whole command's run over the in-memory hub: state, resume, follow, recover, stops."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import pytest

from hubasync.cli.download import Download
from hubasync.cli.progress import Progress
from hubasync.core.bounds import Bounds
from hubasync.core.params import Query
from hubasync.core.retry import RetryPolicy
from hubasync.core.urls import parse_share_url
from hubasync.errors import ExitCode, Interrupted
from hubasync.run.settings import RunSettings
from hubasync.run.stopping import StopRequest
from hubasync.transport.session import HubSession

from .memory_hub import URL, FakeClock, MemoryHub


class StopAfter(FakeClock):
    """A clock that stops a follow (as SIGTERM would) at its ``passes``-th interval."""

    def __init__(self, hub: MemoryHub, passes: int, grow: int = 0) -> None:
        super().__init__()
        self.time = hub.clock.time
        self.hub, self.passes, self.grow, self.intervals = hub, passes, grow, 0

    def sleep(self, seconds: float) -> None:
        if seconds == 60.0:  # the follow's interval
            self.intervals += 1
            if self.intervals >= self.passes:
                raise Interrupted("stopped by SIGTERM")
            base = len(self.hub.events)
            self.hub.events.extend({"n": base + i, "observation time": "2020-01-02 00:00:00Z"}
                                   for i in range(self.grow))
        super().sleep(seconds)


def settings(tmp_path: Path, **fields: Any) -> RunSettings:
    values: dict[str, Any] = {"format": "jsonl", "output": str(tmp_path / "out.jsonl"),
                              "state": str(tmp_path / "out.state"), "query": Query(sort="_id")}
    values.update(fields)
    return RunSettings(share=parse_share_url(URL), apikey="key", **values)


def download(hub: MemoryHub, chosen: RunSettings, clock: Optional[FakeClock] = None) -> int:
    clock = clock or hub.clock
    hub.clock = clock
    session = HubSession(hub.transport(), clock=clock, policy=RetryPolicy(retries=3))
    return Download(chosen, session, Progress(open("/dev/null", "w"), enabled=False),
                    StopRequest(), lambda reason, wait, failures: None).run()


def lines(path: str) -> List[int]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["n"] for line in handle]


def state(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return dict(json.load(handle))


def test_a_run_with_state_then_the_events_inserted_since(tmp_path: Path) -> None:
    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path)
    assert download(hub, chosen) == ExitCode.OK
    saved = state(str(chosen.state))
    assert saved["complete"] and saved["last_inserted_token"] == "t25" and saved["events"] == 25
    hub.events.extend({"n": 25 + i, "observation time": "x"} for i in range(7))
    assert download(hub, chosen) == ExitCode.OK
    assert lines(str(chosen.output)) == list(range(32))
    assert hub.requests("POST")[-1].endswith("token=t25")


def test_follow_writes_each_pass_once_and_stops_cleanly(tmp_path: Path) -> None:
    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, follow=True)
    clock = StopAfter(hub, passes=3, grow=6)
    assert download(hub, chosen, clock) == ExitCode.OK
    assert lines(str(chosen.output)) == list(range(37))
    saved = state(str(chosen.state))
    assert saved["complete"] and saved["last_inserted_token"] == "t37"


def test_a_follow_stopped_after_a_pass_goes_on_from_the_newest_event(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hub = MemoryHub(events=12, page_max=10)
    chosen = settings(tmp_path, follow=True)
    assert download(hub, chosen, StopAfter(hub, passes=1)) == ExitCode.OK
    assert capsys.readouterr().err.endswith("stopped by SIGTERM: 12 events written by this run\n")
    hub.events.extend({"n": 12 + i, "observation time": "x"} for i in range(3))
    assert download(hub, chosen, StopAfter(hub, passes=1)) == ExitCode.OK
    assert lines(str(chosen.output)) == list(range(15))
    # the second run counts its own events, not the pass's since the state began
    assert capsys.readouterr().err.endswith("stopped by SIGTERM: 3 events written by this run\n")


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "out.json"))
    hub.faults["status"] = [None, Interrupted("stopped by SIGINT")]
    assert download(hub, chosen) == ExitCode.INTERRUPTED
    saved = state(str(chosen.state))
    assert (saved["events"], saved["token"], saved["complete"]) == (10, "t10", False)
    assert download(hub, chosen) == ExitCode.OK
    with open(str(chosen.output), encoding="utf-8") as handle:
        assert [event["n"] for event in json.load(handle)] == list(range(25))


def test_an_invalid_stored_token_and_recover(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, limit=10)
    assert download(hub, chosen) == ExitCode.OK
    saved = state(str(chosen.state))
    saved["token"] = "broken"
    Path(str(chosen.state)).write_text(json.dumps(saved))
    assert download(hub, chosen) == ExitCode.REJECTED
    assert "--recover" in capsys.readouterr().err
    recovered = RunSettings(**{**chosen.__dict__, "recover": True})
    assert download(hub, recovered) == ExitCode.OK
    assert "starting again from" in capsys.readouterr().err
    assert lines(str(chosen.output))[:10] == list(range(10))
    assert "start=" in hub.requests("POST")[-1]


def test_a_failure_prints_the_token_that_continues(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from .memory_hub import reply

    hub = MemoryHub(events=25, page_max=10)
    hub.faults["status"] = [None] + [reply(503)] * 10
    chosen = settings(tmp_path, state=None, format="json", output=None, bounds=Bounds(retries=1))
    assert download(hub, chosen) == ExitCode.UNAVAILABLE
    err = capsys.readouterr().err.splitlines()
    assert "gave up after" in err[-2] and err[-1] == "t10"


def test_a_limit_reached_prints_the_token(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, state=None, limit=15)
    assert download(hub, chosen) == ExitCode.OK
    assert capsys.readouterr().err.splitlines()[-1] == "t15"
    assert lines(str(chosen.output)) == list(range(15))


def test_a_count(tmp_path: Path) -> None:
    from hubasync.cli.download import _count

    hub = MemoryHub(events=25)
    chosen = RunSettings(share=parse_share_url(URL + "/count"), apikey="key", query=Query(),
                      output=str(tmp_path / "count.json"))
    session = HubSession(hub.transport(), clock=hub.clock)
    assert _count(chosen, session, StopRequest(), lambda *note: None) == ExitCode.OK
    assert json.loads(Path(str(chosen.output)).read_text()) == {"count": 25}


@pytest.mark.parametrize("total", [True, False])
def test_the_progress_line_learns_the_total_first_only_when_asked(tmp_path: Path,
                                                                   total: bool) -> None:
    import io

    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, state=None, progress=True, progress_total=total)
    stream = io.StringIO()
    progress = Progress(stream, enabled=True)
    session = HubSession(hub.transport(), clock=hub.clock)
    counter = HubSession(hub.transport(), clock=hub.clock)
    done = Download(chosen, session, progress, StopRequest(), lambda *_: None,
                    counter=lambda: counter).run()
    assert done == ExitCode.OK
    counts = [url for url in hub.requests("POST") if "/count" in url]
    if total:  # a count job first, then the pages
        assert progress.total == 25 and len(counts) == 1
        assert "/ 25 events (" in stream.getvalue()  # the line shows the total
        assert "hubasync: 25 events in 3 pages" in stream.getvalue()  # then the summary
    else:  # the first event as soon as in a pipe: no count job before the download
        assert progress.total is None and counts == []


def test_a_finished_json_run_left_unrenamed_is_finished(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from hubasync.events.formats import JsonArrayWriter

    class Killed(BaseException):
        pass

    def killed(self: JsonArrayWriter) -> None:
        raise Killed  # as kill -9 would stop it: after the last commit, before the rename

    hub = MemoryHub(events=25, page_max=10)
    chosen = settings(tmp_path, format="json", output=str(tmp_path / "out.json"))
    with monkeypatch.context() as patched:
        patched.setattr(JsonArrayWriter, "_finish", killed)
        with pytest.raises(Killed):
            download(hub, chosen)
    final = Path(str(chosen.output))
    assert state(str(chosen.state))["complete"] and not final.exists()
    assert download(hub, chosen) == ExitCode.OK
    assert [event["n"] for event in json.loads(final.read_bytes())] == list(range(25))
    assert not Path(str(final) + ".part").exists()
    assert len(hub.requests("POST")) == 3  # nothing asked again


def test_the_state_of_another_command_is_refused(tmp_path: Path) -> None:
    from hubasync.errors import UsageError

    hub = MemoryHub(events=5)
    assert download(hub, settings(tmp_path)) == ExitCode.OK
    with pytest.raises(UsageError, match="another command"):
        download(hub, settings(tmp_path, query=Query(sort="_id", filter="x")))


def test_a_stopped_follow_says_so_and_exits_0(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    hub = MemoryHub(events=5)
    assert download(hub, settings(tmp_path, follow=True), StopAfter(hub, passes=2)) == 0
    assert "stopped by SIGTERM" in capsys.readouterr().err
