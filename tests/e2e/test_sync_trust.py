"""The service keeps the command's promises under attack: stops in seconds whatever a page does,
takes a storm of signals, refuses a second instance before binding anything, lets no hostile
share hold a worker, and rotates files exactly once, ``kill -9`` included."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any, Dict, List

from processes import Child, wait_until

from .helpers import command, run, share

ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
ENV["APIKEY"] = "demo-key"


def config(folder: Path, shares: Dict[str, str], *, fmt: str = "jsonl", interval: float = 0.3,
           extra: str = "") -> Path:
    """A config of ``shares`` (name: URL) in ``folder``."""
    lines = [f'directory = "{folder}"', 'apikey_env = "APIKEY"', f"interval = {interval}", extra]
    for name, url in shares.items():
        lines += [f"[shares.{name}]", f'url = "{url}"', f'format = "{fmt}"', "retries = 2"]
    path = folder / "hubasync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def url(sim: Any, name: str) -> str:
    return f"{sim.url}/shares/v2/async/{name}"


def lines_of(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stopped_within(child: Child, sig: int, seconds: float) -> int:
    started = time.monotonic()
    child.send_signal(sig)
    code = child.wait()
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.1f} s to stop: {child.stderr_text()}"
    return code


def test_sigterm_stops_sync_in_seconds_while_a_body_trickles(make_sim: Any,
                                                             tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=300, page_max=100, fault_delay=20,
                   faults=["results-trickle-forever:1000"])
    path = config(tmp_path, {"s1": url(sim, "s1"), "s2": url(sim, "s2")}, fmt="json")
    with Child(command() + ["sync", str(path)], env=ENV) as child:
        wait_until(lambda: sim.stats.faults["results-trickle-forever"] >= 2, "trickling bodies",
                   child=child)
        assert stopped_within(child, signal.SIGTERM, 10) == 0
        assert "Traceback" not in child.stderr_text()
    for name in ("s1", "s2"):  # the trickling page rolled back: a valid, empty document
        assert json.loads((tmp_path / f"{name}.json").read_text()) == []


def test_sigint_stops_follow_in_seconds_while_a_body_trickles(make_sim: Any,
                                                              tmp_path: Path) -> None:
    sim = make_sim(events=300, page_max=100, fault_delay=20,
                   faults=["results-trickle-forever:1000"])
    out = tmp_path / "out.jsonl"
    args = [share(sim), "--follow", "--format=jsonl", "-o", str(out), "--state",
            str(tmp_path / "out.state")]
    with Child(command() + args, env=ENV) as child:
        wait_until(lambda: sim.stats.faults["results-trickle-forever"] >= 1, "a trickling body",
                   child=child)
        assert stopped_within(child, signal.SIGINT, 10) == 0
    assert out.read_bytes() == b""  # the page in progress was rolled back


def test_a_storm_of_sighups_neither_crashes_nor_deadlocks_the_service(make_sim: Any,
                                                                       tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=400, page_max=50, grow=50)
    path = config(tmp_path, {"s1": url(sim, "s1"), "s2": url(sim, "s2")}, interval=0.1)
    with Child(command() + ["sync", str(path)], env=ENV) as child:
        wait_until(lambda: len(lines_of(tmp_path / "s1.jsonl")) >= 400, "the first pass",
                   child=child)
        for _ in range(1000):
            os.kill(child.pid, signal.SIGHUP)
        before = len(lines_of(tmp_path / "s2.jsonl"))
        wait_until(lambda: len(lines_of(tmp_path / "s2.jsonl")) > before + 50,
                   "the shares going on after the storm", child=child)
        assert stopped_within(child, signal.SIGTERM, 10) == 0
        stderr = child.stderr_text()
    assert "RecursionError" not in stderr and "Traceback" not in stderr
    assert "reopening the outputs" in stderr
    for name in ("s1", "s2"):
        got = lines_of(tmp_path / f"{name}.jsonl")
        assert got == sim.share_events(name)[:len(got)]


def test_a_second_instance_is_refused_before_binding_the_metrics(make_sim: Any,
                                                                 tmp_path: Path) -> None:
    sim = make_sim(shares=1, events=100)
    path = config(tmp_path, {"s1": url(sim, "s1")}, extra='metrics = "127.0.0.1:0"')
    with Child(command() + ["sync", str(path)], env=ENV) as first:
        wait_until(lambda: "metrics served" in first.stderr_text(), "the first instance",
                   child=first)
        port = first.stderr_text().split("http://127.0.0.1:")[1].split("/")[0]
        path.write_text(path.read_text().replace('"127.0.0.1:0"', f'"127.0.0.1:{port}"'))
        second = run(["sync", str(path), "--once"])
        assert second.code == 75, second.stderr
        assert str(first.pid) in second.stderr and "cannot listen" not in second.stderr
        assert stopped_within(first, signal.SIGTERM, 10) == 0


def test_hostile_shares_do_not_hold_the_workers(make_sim: Any, tmp_path: Path) -> None:
    hostile = make_sim(shares=2, events=100, faults=["status-pending-forever:100000"],
                       retry_after=0.5)
    good = make_sim(shares=3, events=600, page_max=50)
    shares = {"h1": url(hostile, "s1"), "h2": url(hostile, "s2"),
              **{f"g{n}": url(good, f"s{n}") for n in (1, 2, 3)}}
    path = config(tmp_path, shares, extra="concurrency = 2")  # as many hostile as workers
    with Child(command() + ["sync", str(path)], env=ENV) as child:
        for n in (1, 2, 3):
            wait_until(lambda n=n: len(lines_of(tmp_path / f"g{n}.jsonl")) == 600,
                       f"good share g{n} whole", child=child)
        assert hostile.stats.requests["status"] >= 2  # its jobs were being polled meanwhile
        assert stopped_within(child, signal.SIGTERM, 10) == 0


def test_rotation_and_kill_9_lose_and_repeat_nothing(make_sim: Any, tmp_path: Path) -> None:
    rng = random.Random(20261206)
    sim = make_sim(shares=2, events=300, page_max=40, grow=150)
    names = {"jsonl": "s1", "json": "s2"}
    for fmt, name in names.items():
        (tmp_path / fmt).mkdir()
        config(tmp_path / fmt, {name: url(sim, name)}, fmt=fmt, interval=0.05)
    rotated = {fmt: 0 for fmt in names}
    for _ in range(12):
        children = [Child(command() + ["sync", str(tmp_path / fmt / "hubasync.toml")], env=ENV)
                    for fmt in names]
        try:
            time.sleep(rng.uniform(0.05, 0.6))  # any moment will do: a crash is the point
            for fmt, name in names.items():
                output = tmp_path / fmt / f"{name}.{fmt}"
                if rng.random() < 0.6 and output.exists():
                    rotated[fmt] += 1
                    output.rename(output.with_name(f"{name}.{fmt}.{rotated[fmt]}"))
            time.sleep(rng.uniform(0.0, 0.4))
        finally:
            for child in children:
                child.kill()  # kill -9
                child.close()
    sim.stop_growing()
    for fmt in names:
        assert run(["sync", str(tmp_path / fmt / "hubasync.toml"), "--once"]).code == 0
    for fmt, name in names.items():
        got: List[Dict[str, Any]] = []
        files = sorted((path for path in (tmp_path / fmt).glob(f"{name}.{fmt}*")
                        if not path.name.endswith(".lock")), key=lambda p: (len(p.name), p.name))
        files = files[1:] + files[:1]  # the rotated ones in order, the live one last
        for path in files:
            if fmt == "json":  # every file a whole JSON document
                text = path.read_text()
                try:
                    got += json.loads(text)
                except ValueError as error:
                    raise AssertionError(f"{path.name} is not a JSON document ({error}): "
                                         f"{text[:80]!r}...{text[-80:]!r}") from None
            else:
                got += lines_of(path)  # every line whole
        expected = sim.share_events(name)
        assert [e["uuid"] for e in got] == [e["uuid"] for e in expected], fmt
    assert sum(rotated.values()) >= 4
