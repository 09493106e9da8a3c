"""``hubasync sync`` and ``hubasync status`` against a simulator serving many shares."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from processes import wait_until
from prometheus_client.parser import text_string_to_metric_families

from .helpers import command, run


def config(sim: Any, folder: Path, shares: List[str], *, interval: float = 0.3,
           extra: str = "", metrics: bool = False, fmt: str = "jsonl") -> Path:
    lines = [f'directory = "{folder}"', 'apikey_env = "APIKEY"', "concurrency = 3",
             f"interval = {interval}"]
    if metrics:
        lines.append('metrics = "127.0.0.1:0"')
    lines.append(extra)
    for name in shares:
        lines += ["", f"[shares.{name}]", f'url = "{sim.url}/shares/v2/async/{name}"',
                  f'format = "{fmt}"', "timeout = 5", "retries = 1"]
    path = folder / "hubasync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def events_of(path: Path) -> List[Dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


class Service:
    """A ``hubasync sync`` child whose stderr is read as it runs (never blocked)."""

    def __init__(self, args: List[str]) -> None:
        environment = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        environment["APIKEY"] = "demo-key"
        self.process = subprocess.Popen(command() + args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, env=environment)
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.lines.append(raw.decode("utf-8", "replace"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code


def test_once_brings_every_share_whole(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=6, events=700, page_max=250)
    names = [f"s{n}" for n in range(1, 7)]
    done = run(["sync", str(config(sim, tmp_path, names)), "--once"])
    assert done.code == 0, done.stderr
    for name in names:
        assert events_of(tmp_path / f"{name}.jsonl") == sim.share_events(name)
        assert json.loads((tmp_path / f"{name}.state").read_text())["complete"]
    shown = run(["status", str(config(sim, tmp_path, names))])
    assert shown.code == 0, shown.stderr
    rows = shown.stdout.decode().splitlines()
    assert len(rows) == 7 and all(" ok " in row and "700" in row for row in rows[1:])


def test_one_refused_share_fails_alone(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=3, events=300, page_max=100, refused_shares=("s2",))
    path = config(sim, tmp_path, ["s1", "s2", "s3"])
    done = run(["sync", str(path), "--once"])
    assert done.code == 3, done.stderr
    failed = [line for line in done.stderr.splitlines() if "level=error" in line]
    assert len(failed) == 1 and "share=s2" in failed[0] and "refused" in failed[0]
    assert events_of(tmp_path / "s1.jsonl") == sim.share_events("s1")
    assert events_of(tmp_path / "s3.jsonl") == sim.share_events("s3")
    shown = run(["status", str(path)])
    assert shown.code == 6
    row = [r for r in shown.stdout.decode().splitlines() if r.startswith("s2 ")][0]
    assert "failing" in row and "refused" in row


def test_a_bad_config_is_refused_before_any_request(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=10)
    path = config(sim, tmp_path, ["s1"], extra="colour = 3")
    done = run(["sync", str(path), "--once"])
    assert done.code == 2
    assert "colour" in done.stderr and str(path) in done.stderr
    assert sim.stats.requests["post"] == 0


def test_killed_and_restarted_while_shares_grow_loses_and_repeats_nothing(
        make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=4, events=400, page_max=100, grow=30)
    names = ["s1", "s2", "s3", "s4"]
    path = config(sim, tmp_path, names)
    for round_number, sig in enumerate((signal.SIGKILL, signal.SIGTERM, signal.SIGKILL)):
        service = Service(["sync", str(path)])
        floor = 400 + 20 * round_number

        def written(floor: int = floor) -> bool:
            return all(len(events_of(tmp_path / f"{n}.jsonl")) >= floor for n in names)

        wait_until(written, "every share to be written")
        code = service.stop(sig)
        assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), service.lines
        for name in names:
            got = events_of(tmp_path / f"{name}.jsonl")
            assert got == sim.share_events(name)[:len(got)], (name, round_number)


def test_status_and_metrics_while_running(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=3, events=300, page_max=100, refused_shares=("s3",))
    path = config(sim, tmp_path, ["s1", "s2", "s3"], metrics=True)
    service = Service(["sync", str(path)])
    try:
        wait_until(lambda: any("metrics served" in line for line in service.lines), "metrics")
        address = [line for line in service.lines if "metrics served" in line][0]
        url = address.split("address=")[1].split()[0].strip('"')
        wait_until(lambda: (tmp_path / "s2.status.json").exists()
                 and (tmp_path / "s3.status.json").exists(), "status records")
        import urllib.request

        def scrape() -> Dict[str, Dict[tuple, float]]:
            with urllib.request.urlopen(url, timeout=10) as answer:
                text = answer.read().decode()
            found: Dict[str, Dict[tuple, float]] = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                        sample.value
            return found

        def s1_done() -> Optional[Dict[str, Dict[tuple, float]]]:
            # its events count at each page, its pass is a success (up) once it has ended
            found = scrape()
            done = (found.get("hubasync_events_total", {}).get((("share", "s1"),), 0) >= 300
                    and found.get("hubasync_up", {}).get((("share", "s1"),)) == 1)
            return found if done else None

        metrics = wait_until(s1_done, "s1's events and its pass's success in the metrics")
        assert metrics["hubasync_up"][(("share", "s3"),)] == 0
        assert metrics["hubasync_errors_total"][(("kind", "AuthError"), ("share", "s3"))] >= 1
        assert metrics["hubasync_pages_total"][(("share", "s2"),)] >= 3
        assert metrics["hubasync_last_success_timestamp_seconds"][(("share", "s1"),)] > 1e9
        shown = run(["status", str(path)])
        assert shown.code == 6
        assert shown.stderr.startswith("hubasync: unhealthy: s3 (failing)"), shown.stderr
        rows = {line.split()[0]: line for line in shown.stdout.decode().splitlines()[1:]}
        assert rows["s1"].split()[1] == "ok" and rows["s2"].split()[1] == "ok"
        assert rows["s3"].split()[1] == "failing" and "401" in rows["s3"]
    finally:
        assert service.stop() == 0


def test_a_second_instance_exits_75(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=100)
    path = config(sim, tmp_path, ["s1", "s2"])
    service = Service(["sync", str(path)])
    try:
        wait_until(lambda: (tmp_path / "s1.status.json").exists(), "the first instance")
        second = run(["sync", str(path), "--once"])
        assert second.code == 75, second.stderr
        assert f"in use by hubasync pid {service.process.pid}" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        assert service.stop() == 0  # the first instance went on, untroubled


def test_rotation_on_sighup_loses_and_repeats_nothing(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=1, events=200, page_max=50, grow=40)
    path = config(sim, tmp_path, ["s1"], interval=0.2)
    output = tmp_path / "s1.jsonl"
    service = Service(["sync", str(path)])
    try:
        wait_until(lambda: len(events_of(output)) >= 200, "the first events")
        rotated = tmp_path / "s1.jsonl.1"
        os.rename(output, rotated)
        service.process.send_signal(signal.SIGHUP)
        wait_until(lambda: len(events_of(output)) >= 20, "events in the new file")
    finally:
        assert service.stop() == 0
    got = events_of(rotated) + events_of(output)
    assert len(got) >= 220
    assert got == sim.share_events("s1")[:len(got)]



def test_json_and_csv_outputs_grow_pass_after_pass(make_sim: Any, tmp_path: Path) -> None:
    import csv

    sim = make_sim(shares=2, events=250, page_max=100)
    for fmt in ("json", "csv"):
        folder = tmp_path / fmt
        folder.mkdir()
        path = config(sim, folder, ["s1"], fmt=fmt)
        for grown in (0, 130):
            sim.append_events("s1", grown)
            done = run(["sync", str(path), "--once"])
            assert done.code == 0, done.stderr
            expected = sim.share_events("s1")
            if fmt == "json":
                got = json.loads((folder / "s1.json").read_bytes())
                assert got == expected  # a whole JSON array after every pass
            else:
                with open(folder / "s1.csv", newline="", encoding="utf-8") as handle:
                    rows = list(csv.DictReader(handle))
                assert [row["uuid"] for row in rows] == [e["uuid"] for e in expected]


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_an_output_without_its_state_is_refused_before_any_request(
        make_sim: Any, tmp_path: Path, fmt: str) -> None:
    sim = make_sim(shares=1, events=50)
    path = config(sim, tmp_path, ["s1"], fmt=fmt)
    (tmp_path / f"s1.{fmt}").write_text("precious\n")
    done = run(["sync", str(path), "--once"])
    assert done.code == 2, done.stderr
    assert "move it away" in done.stderr and done.stderr.count("\n") == 1
    assert (tmp_path / f"s1.{fmt}").read_text() == "precious\n"  # not replaced, not added to
    assert sum(sim.stats.requests.values()) == 0


def test_too_many_shares_for_the_open_files_allowed_are_refused_up_front(
        make_sim: Any, tmp_path: Path) -> None:
    import resource

    sim = make_sim(shares=2, events=10)
    path = config(sim, tmp_path, [f"share{n}" for n in range(300)])

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    environment = dict(os.environ, APIKEY="demo-key")
    done = subprocess.run(command() + ["sync", str(path), "--once"], capture_output=True,
                          env=environment, timeout=120, preexec_fn=few_files)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "300 shares need about 1264 open files" in stderr and "ulimit -n" in stderr
    assert sim.stats.requests["post"] == 0


def test_a_notification_share_is_followed_in_insertion_order(make_sim: Any,
                                                              tmp_path: Path) -> None:
    sim = make_sim(events=300, page_max=100)
    path = tmp_path / "hubasync.toml"
    path.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\n[shares.cust42]\n'
                    f'url = "{sim.url}/shares/v2/async/notify/0"\n')
    first = len(sim.share_events("notify/0"))
    for grown in (0, 25):
        sim.append_events("notify/0", grown)
        done = run(["sync", str(path), "--once"])
        assert done.code == 0, done.stderr
        got = events_of(tmp_path / "cust42.jsonl")
        assert got == sim.share_events("notify/0") and len(got) == first + grown
