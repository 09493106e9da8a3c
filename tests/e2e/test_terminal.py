"""The command on a terminal, as a user sees it: stdout and stderr on one pseudo-terminal, the
bytes read back through a terminal emulator (tests/terminal.py). The progress line never runs
into the JSON or the token line, and the run ends with its summary; in a pipe (cron) and with
--quiet, neither the line nor the summary is written."""

from __future__ import annotations

import errno
import json
import os
import re
import select
import subprocess
from typing import Any, List

import pytest
from terminal import Screen

from .helpers import command, run, share

SUMMARY = re.compile(r"hubasync: [\d,]+ events? in \d+ pages?, \d+:\d\d, [\d.]+[kMG]?/s")


def on_a_terminal(args: List[str]) -> List[str]:
    """Run the CLI with stdout and stderr on one pseudo-terminal; the screen's lines."""
    if not hasattr(os, "openpty"):
        pytest.skip("no pseudo-terminals here")
    master, slave = os.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    environment.update(APIKEY="demo-key", COLUMNS="200")
    child = subprocess.Popen(command() + args, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=slave, env=environment)
    os.close(slave)
    received = b""
    try:
        while True:  # read as it comes (a full terminal would block the child) until it closes
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, f"no output for 60 s: {received!r}"
            try:
                data = os.read(master, 65536)
            except OSError as error:  # EIO: the child exited and the terminal is closed
                if error.errno != errno.EIO:
                    raise
                break
            if not data:
                break
            received += data
    finally:
        os.close(master)
        assert child.wait(timeout=60) == 0, received
    screen = Screen()
    screen.feed(received.decode())
    return screen.lines()


def test_json_on_the_terminal_is_not_run_into_and_the_summary_ends_the_run(sim: Any) -> None:
    lines = on_a_terminal([share(sim), "--sort=_id"])  # 3 pages, nothing left: no token
    assert SUMMARY.fullmatch(lines[-1]), lines[-1]
    assert lines[-1].startswith("hubasync: 2,500 events in 3 pages, ")
    document = json.loads("\n".join(lines[:-1]))  # what the screen shows above it is the JSON
    assert [event["uuid"] for event in document] == [
        event["uuid"] for event in sim.share_events("demo")]


def test_the_token_line_stands_alone_after_the_summary(sim: Any, tmp_path: Any) -> None:
    lines = on_a_terminal([share(sim), "--limit=5", "-o", str(tmp_path / "out.json")])
    assert SUMMARY.fullmatch(lines[-2]), lines
    assert re.fullmatch(r"[A-Za-z0-9_=+/-]+", lines[-1]), lines  # the bare token, alone


def test_in_a_pipe_or_quiet_there_is_no_progress_and_no_summary(sim: Any) -> None:
    for args in ([], ["--quiet"], ["--quiet", "--progress"]):
        done = run([share(sim), "--limit=5", *args])
        assert done.code == 0, done.stderr
        assert done.stderr.count("\n") == 1  # the token line only
        assert "events" not in done.stderr and "\r" not in done.stderr


def test_forced_progress_in_a_pipe_ends_with_the_summary_before_the_token(sim: Any) -> None:
    done = run([share(sim), "--limit=5", "--progress"])
    assert done.code == 0, done.stderr
    lines = done.stderr.split("\r")[-1].splitlines()
    assert SUMMARY.fullmatch(lines[-2].strip()), lines
