"""The sync service over in-memory hubs: turns, backoff, failures of one share, bounds kept
across turns and restarts, rotation, stopping. No socket: each share's transport comes from
the service's transport factory."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from processes import PATIENCE, wait_until

from hubasync.delivery import Outcome
from hubasync.errors import AuthError, BadBody, HubasyncError
from hubasync.service.config import ServiceConfig, ShareConfig, load_config
from hubasync.service.log import ServiceLog
from hubasync.service.metrics import ServiceMetrics, error_kind
from hubasync.service.scheduler import Service, backoff
from hubasync.service.status import load_status

from .memory_hub import MemoryHub, Reply, Stall, reply

HUB = "https://hub.test/shares/v2/async"
KEY = "service-test-key"


def write_config(folder: Path, shares: List[str], **top: Any) -> ServiceConfig:
    lines = [f'directory = "{folder}"', 'apikey_env = "KEY"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in top.items()]
    for name in shares:
        lines += [f"[shares.{name}]", f'url = "{HUB}/{name}"']
    path = folder / "hubasync.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(str(path), {"KEY": KEY})


class Recorder:
    """The service's log lines, as dicts."""

    def __init__(self) -> None:
        self.lines: List[Dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            for line in text.splitlines():
                self.lines.append(json.loads(line))
        return len(text)

    def flush(self) -> None:
        pass

    def messages(self, share: Optional[str] = None) -> List[str]:
        with self._lock:
            return [line["msg"] for line in self.lines if share in (None, line.get("share"))]


def make_service(config: ServiceConfig, hubs: Dict[str, MemoryHub], *, once: bool = False,
                 turn_seconds: float = 5.0) -> tuple[Service, Recorder]:
    recorder = Recorder()
    log = ServiceLog(recorder, log_format="json", secrets=config.secrets)  # type: ignore[arg-type]
    service = Service(config, log=log, once=once, metrics=ServiceMetrics(),
                      turn_seconds=turn_seconds,
                      transports=lambda share, settings: hubs[share.name].transport())
    return service, recorder


def run_once(config: ServiceConfig, hubs: Dict[str, MemoryHub], **kw: Any) -> tuple[int, Service,
                                                                                   Recorder]:
    service, recorder = make_service(config, hubs, once=True, **kw)
    service.claim()
    return service.run(), service, recorder


class Following:
    """A service following its shares on a thread, until stopped."""

    def __init__(self, config: ServiceConfig, hubs: Dict[str, MemoryHub], **kw: Any) -> None:
        self.service, self.log = make_service(config, hubs, **kw)
        self.service.claim()
        self.code: Optional[int] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.code = self.service.run()

    def stop(self, within: float = 10.0) -> int:
        self.service.stop("a test")
        self.thread.join(within)
        assert not self.thread.is_alive(), "the service did not stop in time"
        assert self.code is not None
        return self.code


def events_in(path: Path) -> List[int]:
    if not path.exists():
        return []
    return [json.loads(line)["n"] for line in path.read_text().splitlines()]


def errors(service: Service, share: str, kind: str) -> float:
    return service.metrics.errors.value(share=share, kind=kind)


# -- one pass, every share --------------------------------------------------------------------

def test_once_brings_every_share_whole(tmp_path: Path) -> None:
    hubs = {name: MemoryHub(events=n, page_max=10) for name, n in (("a", 25), ("b", 0), ("c", 7))}
    code, service, log = run_once(write_config(tmp_path, list(hubs)), hubs)
    assert code == 0
    for name, hub in hubs.items():
        assert events_in(tmp_path / f"{name}.jsonl") == [e["n"] for e in hub.events]
        state = json.loads((tmp_path / f"{name}.state").read_text())
        assert state["complete"] and state["events"] == len(hub.events)
        assert load_status(str(tmp_path / f"{name}.status.json"), name).failures == 0
    passes = [line for line in log.lines if line["msg"] == "pass done"]
    assert {(p["share"], p["events"], p["pages"]) for p in passes} == {
        ("a", 25, 3), ("b", 0, 1), ("c", 7, 1)}


def test_the_temporaries_killed_runs_left_are_removed_with_one_listing(
        tmp_path: Path, monkeypatch: Any) -> None:
    import os

    config = write_config(tmp_path, ["s1", "s2", "s3"])
    left = [".s1.state.k3j_x9ab.tmp", ".s2.status.json.k3j_x9ab.tmp", ".s3.jsonl.new.0a1b2c3d",
            ".s3.state.aaaaaaaa.tmp"]
    kept = [".s4.state.k3j_x9ab.tmp", "hubasync.toml", "notes.txt"]
    for name in left + kept:
        (tmp_path / name).write_text("")
    listed: List[str] = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda folder: listed.append(folder) or real(folder))
    service, _ = make_service(config, {name: MemoryHub() for name in ("s1", "s2", "s3")})
    service.claim()
    assert listed == [str(tmp_path)]  # one listing for the three shares
    names = {p.name for p in tmp_path.iterdir()}
    assert not set(left) & names and set(kept) <= names


def test_once_exits_with_the_first_failing_share_in_config_order(tmp_path: Path) -> None:
    names = ["ok", "missing", "refused", "rejected"]
    hubs = {name: MemoryHub(events=5) for name in names}
    # in time: "refused" fails first, then "missing", then "rejected"
    hubs["refused"].faults["post"] = [reply(401)]
    hubs["missing"].faults["post"] = [reply(503, Retry_After="1")] + [reply(404)] * 9
    hubs["rejected"].faults["post"] = [reply(503, Retry_After="2")] + [reply(400)] * 9
    code, service, _ = run_once(write_config(tmp_path, names), hubs)
    assert code == 4  # "missing": the first in the config, neither the first nor the last in time
    assert events_in(tmp_path / "ok.jsonl") == list(range(5))


# -- backoff and recovery ---------------------------------------------------------------------

def test_backoff_doubles_from_the_interval_up_to_a_ceiling() -> None:
    assert [backoff(n, 10.0) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 80.0]
    assert backoff(30, 10.0) == 3600.0
    assert backoff(2, 7200.0) == 7200.0  # an interval longer than the ceiling is the ceiling


def test_a_failing_share_is_retried_after_its_backoff_and_recovers(tmp_path: Path) -> None:
    hubs = {"flaky": MemoryHub(events=15, page_max=10), "ok": MemoryHub(events=5)}
    hubs["flaky"].faults["post"] = [reply(401), reply(401)]
    following = Following(write_config(tmp_path, ["flaky", "ok"], interval=0.2), hubs)
    try:
        status = tmp_path / "flaky.status.json"
        wait_until(lambda: events_in(tmp_path / "flaky.jsonl") == list(range(15)), "the retry")
        wait_until(lambda: load_status(str(status), "flaky").failures == 0, "the reset")
        record = load_status(str(status), "flaky")
        assert record.last_success is not None and "401" in (record.last_error or "")
        assert errors(following.service, "flaky", "AuthError") == 2
        assert following.service.metrics.up.value(share="flaky") == 1
    finally:
        assert following.stop() == 0
    warnings = [line for line in following.log.lines if line["msg"] == "pass failed"]
    assert all(w["error"].startswith("the hub refused") and w["kind"] == "AuthError"
               for w in warnings)
    assert [w["retry_in"] for w in warnings] == [0.2, 0.4]  # interval, then doubled


def test_an_internal_error_fails_its_share_only(tmp_path: Path) -> None:
    hubs = {"buggy": MemoryHub(events=5), "ok": MemoryHub(events=25, page_max=10)}
    hubs["buggy"].faults["send"] = [RuntimeError("a bug")]
    code, service, log = run_once(write_config(tmp_path, ["buggy", "ok"]), hubs)
    assert code == 1
    assert events_in(tmp_path / "ok.jsonl") == list(range(25))
    assert errors(service, "buggy", "internal") == 1
    record = load_status(str(tmp_path / "buggy.status.json"), "buggy")
    assert record.failures == 1 and "internal error" in (record.last_error or "")
    assert error_kind(RuntimeError()) == "internal" and error_kind(AuthError("x")) == "AuthError"


def test_a_corrupt_state_fails_its_share_only(tmp_path: Path) -> None:
    hubs = {"broken": MemoryHub(events=5), "ok": MemoryHub(events=5)}
    (tmp_path / "broken.state").write_text("{not json")
    code, service, log = run_once(write_config(tmp_path, ["broken", "ok"]), hubs)
    assert code == 2
    assert events_in(tmp_path / "ok.jsonl") == list(range(5))
    assert hubs["broken"].sent == []  # nothing asked for a share that cannot start
    assert (tmp_path / "broken.state").read_text() == "{not json"  # and nothing replaced
    record = load_status(str(tmp_path / "broken.status.json"), "broken")
    assert "not a usable hubasync state" in (record.last_error or "")


# -- no share holds a worker ------------------------------------------------------------------

def test_a_pending_job_gives_the_worker_back(tmp_path: Path) -> None:
    pending = MemoryHub(events=5, latency=1e9)  # its jobs never finish
    hubs = {"stuck": pending, **{f"ok{n}": MemoryHub(events=30, page_max=10) for n in range(3)}}
    following = Following(write_config(tmp_path, list(hubs), concurrency=1), hubs)
    try:
        for n in range(3):
            wait_until(lambda n=n: len(events_in(tmp_path / f"ok{n}.jsonl")) == 30, f"ok{n}")
        assert len(pending.requests("GET", "/jobs/")) >= 1  # it was polled, and is waiting
    finally:
        assert following.stop() == 0


def test_a_trickling_body_holds_the_worker_one_turn_only(tmp_path: Path) -> None:
    slow = MemoryHub(events=5)
    slow.page_hook = lambda query: Reply(200, {}, [b'[{"n":0}', Stall(60.0), b"]"])
    hubs = {"slow": slow, "ok": MemoryHub(events=40, page_max=10)}
    following = Following(write_config(tmp_path, ["slow", "ok"], concurrency=1), hubs,
                          turn_seconds=0.2)
    try:
        wait_until(lambda: len(events_in(tmp_path / "ok.jsonl")) == 40, "the good share")
    finally:
        started = time.monotonic()
        assert following.stop() == 0
        assert time.monotonic() - started < 10
    assert events_in(tmp_path / "slow.jsonl") == []  # its page was rolled back, not cut


# -- bounds per share, not per turn -----------------------------------------------------------

def endless_empty(hub: MemoryHub) -> None:
    def empty(query: Dict[str, str]) -> Reply:
        token = int(query.get("token", "t0")[1:])
        return Reply(200, {"X-Next-Token": f"t{token + 1}"}, [b"[]"])

    hub.page_hook = empty


def test_empty_pages_are_bounded_across_turns_and_restarts(tmp_path: Path) -> None:
    hostile = MemoryHub(events=5)
    endless_empty(hostile)
    config = write_config(tmp_path, ["hostile"], max_empty_pages=12)
    code, service, _ = run_once(config, {"hostile": hostile}, turn_seconds=0.0)
    assert code == 6
    assert len(hostile.requests("GET", "/results/")) == 13  # as the command: the 13th page
    record = load_status(str(tmp_path / "hostile.status.json"), "hostile")
    assert "--max-empty-pages" in (record.last_error or "")
    # restarted, the service remembers: one more page, and the share stops again
    again = MemoryHub(events=5)
    endless_empty(again)
    code, _, _ = run_once(config, {"hostile": again})
    assert code == 6 and len(again.requests("GET", "/results/")) == 1


def test_the_same_events_again_are_never_written_twice(tmp_path: Path) -> None:
    hostile = MemoryHub(events=5)

    def repeat(query: Dict[str, str]) -> Reply:
        token = int(query.get("token", "t0")[1:])
        return Reply(200, {"X-Next-Token": f"t{token + 1}"}, [b'[{"n":1},{"n":2}]'])

    hostile.page_hook = repeat
    config = write_config(tmp_path, ["hostile"])
    code, _, _ = run_once(config, {"hostile": hostile}, turn_seconds=0.0)
    assert code == 6
    assert events_in(tmp_path / "hostile.jsonl") == [1, 2]
    assert run_once(config, {"hostile": hostile})[0] == 6
    assert events_in(tmp_path / "hostile.jsonl") == [1, 2]  # not once more after a restart


# -- rotation ---------------------------------------------------------------------------------

def test_a_moved_output_and_a_reopen_start_new_files(tmp_path: Path) -> None:
    hub = MemoryHub(events=10, page_max=10)
    following = Following(write_config(tmp_path, ["s"], interval=0.05), {"s": hub})
    output = tmp_path / "s.jsonl"
    try:
        wait_until(lambda: len(events_in(output)) == 10, "the first pass")
        output.rename(tmp_path / "s.jsonl.1")
        hub.events.extend({"n": n} for n in range(10, 20))
        wait_until(lambda: events_in(output) == list(range(10, 20)), "a new file once moved")
        output.rename(tmp_path / "s.jsonl.2")
        output.write_text("")  # logrotate's "create": an empty file at the path
        hub.events.extend({"n": n} for n in range(20, 25))
        wait_until(lambda: events_in(output) == [20, 21, 22, 23, 24], "the empty file taken")
    finally:
        assert following.stop() == 0
    assert events_in(tmp_path / "s.jsonl.1") == list(range(10))
    assert events_in(tmp_path / "s.jsonl.2") == list(range(10, 20))


def test_stop_rolls_back_the_page_in_progress_and_saves_the_state(tmp_path: Path) -> None:
    hub = MemoryHub(events=10, page_max=5)
    following = Following(write_config(tmp_path, ["s"], interval=0.05), {"s": hub})
    try:
        wait_until(lambda: len(events_in(tmp_path / "s.jsonl")) == 10, "the pass")
    finally:
        assert following.stop() == 0
    state = json.loads((tmp_path / "s.state").read_text())
    assert state["output_end"] == (tmp_path / "s.jsonl").stat().st_size  # let go cleanly


def test_a_failure_kind_is_one_of_a_few() -> None:
    assert {error_kind(e) for e in (BadBody("x"), HubasyncError("x"), ValueError())} == {
        "BadBody", "HubasyncError", "internal"}


def test_share_settings_follow_in_place(tmp_path: Path) -> None:
    config = write_config(tmp_path, ["a"])
    share: ShareConfig = config.shares[0]
    from hubasync.service.scheduler import share_settings

    settings = share_settings(config, share)
    assert settings.in_place and settings.follow and settings.state == share.state


def test_behind_grows_for_a_share_that_never_caught_up(tmp_path: Path) -> None:
    dead = MemoryHub(events=5)
    dead.faults["post"] = [reply(503)] * 1000
    hubs = {"dead": dead, "ok": MemoryHub(events=5)}
    following = Following(write_config(tmp_path, ["dead", "ok"], interval=0.05, retries=0),
                          hubs)
    behind = following.service.metrics.behind
    try:
        wait_until(lambda: behind.value(share="dead") > 0.3, "the dead share falling behind")
        first = behind.value(share="dead")
        wait_until(lambda: behind.value(share="dead") > first + 0.3, "it growing still")
        wait_until(lambda: load_status(str(tmp_path / "ok.status.json"), "ok").caught_up,
                 "the good share caught up")
        assert behind.value(share="ok") < behind.value(share="dead")
    finally:
        assert following.stop() == 0


# -- a receiver that hangs does not hold the end ------------------------------------------------

class HangingOnClose:
    """A destination that acknowledges every batch, then at close waits until it is aborted, as
    RELP waits for the answer to its ``close`` from a receiver that hangs."""

    name = "hanging"

    def __init__(self) -> None:
        self.delivered = 0
        self.aborted = threading.Event()

    def deliver(self, batch: Any, deadline: float) -> Outcome:
        self.delivered += len(batch)
        return Outcome(len(batch), [])

    def close(self) -> None:
        self.aborted.wait(PATIENCE)

    def abort(self) -> None:
        self.aborted.set()


def test_closing_the_shares_does_not_wait_for_a_receiver_that_hangs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hanging = HangingOnClose()
    monkeypatch.setattr("hubasync.run.resumable.open_destination", lambda config, share: hanging)
    path = tmp_path / "hubasync.toml"
    path.write_text(f'directory = "{tmp_path}"\napikey_env = "KEY"\n'
                    '[destinations.siem]\nurl = "relp://127.0.0.1:2514"\n'
                    f'[shares.a]\nurl = "{HUB}/a"\ndeliver = ["siem"]\n')
    following = Following(load_config(str(path), {"KEY": KEY}), {"a": MemoryHub(events=30)})
    wait_until(lambda: hanging.delivered == 30, "the events delivered")
    assert following.stop(within=PATIENCE / 2) == 0  # without the abort: PATIENCE
    assert hanging.aborted.is_set()
