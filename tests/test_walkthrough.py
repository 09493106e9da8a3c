"""A newcomer's first tests, of two things the README promises: ``-o -`` writes to stdout (and
``-o ./-`` to a file named ``-``), and ``hubasync status`` says which share has never run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from e2e.helpers import run, share

from hubasync.errors import ExitCode


def test_dash_output_is_stdout_and_dot_slash_dash_a_file(sim: Any, tmp_path: Path) -> None:
    to_stdout = run([share(sim), "--sort=_id", "--limit=10", "-o", "-"], cwd=str(tmp_path))
    assert to_stdout.code == 0, to_stdout.stderr
    assert to_stdout.events == sim.share_events("demo")[:10]
    assert list(tmp_path.iterdir()) == []  # no file named "-", nothing else either

    to_file = run([share(sim), "--sort=_id", "--limit=10", "-o", "./-"], cwd=str(tmp_path))
    assert to_file.code == 0, to_file.stderr
    assert to_file.stdout == b""
    assert json.loads((tmp_path / "-").read_bytes()) == to_stdout.events


def test_status_names_a_share_added_after_the_service_ran(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(events=50, shares=2)
    config = tmp_path / "hubasync.toml"
    head = f'directory = "{tmp_path}"\napikey_env = "APIKEY"\ninterval = 60\n'
    config.write_text(head + f'[shares.s1]\nurl = "{share(sim, "s1")}"\n')
    once = run(["sync", str(config), "--once"])  # s1 caught up once
    assert once.code == 0, once.stderr
    with config.open("a") as added:  # then s2 joins the config
        added.write(f'[shares.s2]\nurl = "{share(sim, "s2")}"\n')

    shown = run(["status", str(config)])
    assert shown.code == ExitCode.UNAVAILABLE, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.decode().splitlines()[1:]}
    assert rows["s1"][1:3] == ["ok", "50"]
    assert rows["s2"][1:] == ["stale", "0", "never", "not", "yet", "started"]
    assert shown.stderr == ("hubasync: unhealthy: s2 (stale) "
                            "(stale after 180 s without a success)\n")
