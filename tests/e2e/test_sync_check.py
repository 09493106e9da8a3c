"""``hubasync sync --check``: one line a share, one count query each, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .helpers import run


def config(folder: Path, body: str) -> Path:
    path = folder / "hubasync.toml"
    path.write_text(f'directory = "{folder / "data"}"\napikey_env = "APIKEY"\n{body}')
    return path


def test_a_ready_config_is_ok_share_by_share(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=120)
    path = config(tmp_path, "".join(f'[shares.{n}]\nurl = "{sim.url}/shares/v2/async/{n}"\n'
                                    for n in ("s1", "s2")))
    done = run(["sync", str(path), "--check"])
    assert done.code == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert [line.split()[:2] for line in lines] == [["directory", "ok"], ["s1", "ok"],
                                                    ["s2", "ok"]]
    assert "120 events" in lines[1]
    assert sim.stats.requests["post"] == 2  # one count query a share
    assert not (tmp_path / "data").exists()  # nothing written, not even the directory


def test_every_problem_is_one_line_and_exit_2(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=1, events=10, refused_shares=["s1"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.jsonl").write_text('{"someone":"else"}\n')
    path = config(tmp_path, f'[shares.s1]\nurl = "{sim.url}/shares/v2/async/s1"\n'
                            f'[shares.missing]\nurl = "{sim.url}/shares/v2/async/nothere"\n'
                            f'[shares.mine]\nurl = "{sim.url}/shares/v2/async/demo"\n')
    done = run(["sync", str(path), "--check"])
    assert done.code == 2
    lines = {line.split()[0]: line.split(None, 2)[1:] for line in
             done.stdout.decode().splitlines()}
    assert lines["directory"][0] == "ok"
    assert lines["s1"] == ["PROBLEM", "the hub refused the API key (401): Invalid API key"]
    assert lines["missing"][0] == "PROBLEM" and "not found (404)" in lines["missing"][1]
    assert lines["mine"][0] == "PROBLEM" and "no state describes it" in lines["mine"][1]
    assert "demo-key" not in done.stdout.decode() + done.stderr


def test_status_takes_debug_and_reads_no_key_of_a_delivering_config(make_sim: Any,
                                                                    tmp_path: Path) -> None:
    sim = make_sim(shares=1, events=10)
    path = config(tmp_path, '[destinations.hec]\nurl = "hec+http://127.0.0.1:1"\n'
                            'token_env = "HEC_TOKEN"\n'
                            f'[shares.s1]\nurl = "{sim.url}/shares/v2/async/s1"\n'
                            'deliver = ["hec"]\n')
    shown = run(["status", str(path), "--debug"], apikey=None)  # neither key in this shell
    assert shown.code == 6, shown.stderr  # s1 never ran: stale, not an internal error
    assert "internal error" not in shown.stderr and "s1" in shown.stdout.decode()
