"""Each documented exit code, reached by a real run; one clear line, no traceback, no key."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Any

import pytest

from .helpers import command, run, share


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("args, apikey, words", [
    (["ftp://hub.example.com/shares/v2/async/abc"], "k", "share URL"),
    (["https://hub.example.com/somewhere/else"], "k", "share URL"),
    (["https://hub.example.com/shares/v2/async/abc/jobs/J1"], "k", "job"),
    (["https://hub.example.com/shares/v2/async/abc"], None, "no API key"),
    (["https://hub.example.com/shares/v2/async/abc", "--limit=ten"], "k", "limit"),
    (["https://hub.example.com/shares/v2/async/abc", "--limit=0"], "k", "limit"),
    (["https://hub.example.com/shares/v2/async/abc", "--limit=-5"], "k", "limit"),
    (["https://hub.example.com/shares/v2/async/abc", "--timeout=0"], "k", "timeout"),
    (["https://hub.example.com/shares/v2/async/abc", "--retries=x"], "k", "retries"),
    (["https://hub.example.com/shares/v2/async/abc", "--bogus"], "k", "--bogus"),
    (["https://hub.example.com/shares/v2/async/abc/0", "--start=2020-01-01"], "k", "start"),
    (["http://hub.example.com/shares/v2/async/abc"], "k", "http"),
    (["https://hub.example.com/shares/v2/async/abc", "--state=s.json"], "k", "-o"),
    (["https://hub.example.com/shares/v2/async/abc/count", "--limit=5"], "k", "count"),
    (["https://hub.example.com/shares/v2/async/abc", "--param=apikey=x"], "k", "apikey"),
    (["https://hub.example.com/shares/v2/async/abc", "--apikey-file=/nonexistent"], "k",
     "/nonexistent"),
    ([], "k", "URL"),
])
def test_usage_errors_exit_2_before_any_request(args: list[str], apikey: Any,
                                                words: str) -> None:
    done = run(args, apikey=apikey)  # hub.example.com is never reached: nothing is sent
    assert done.code == 2, done.stderr
    assert words.lower() in one_line(done.stderr).lower()


def test_wrong_key_exits_3(sim: Any) -> None:
    done = run([share(sim)], apikey="wrong-key-123")
    assert done.code == 3
    line = one_line(done.stderr)
    assert "key" in line and "wrong-key-123" not in line
    assert done.stdout in (b"", b"[]\n")


def test_unknown_share_exits_4(sim: Any) -> None:
    done = run([share(sim, "nosuchshare")])
    assert done.code == 4
    assert "not found" in one_line(done.stderr)


def test_rejected_query_exits_5_with_each_reason(sim: Any) -> None:
    done = run([share(sim), "--start=foo", "--param=startt=1"])
    assert done.code == 5
    line = one_line(done.stderr)
    assert "start" in line and "startt" in line


def test_invalid_token_exits_5(sim: Any) -> None:
    done = run([share(sim), "--token=not-a-token"])
    assert done.code == 5
    assert "token" in one_line(done.stderr).lower()


def test_dead_hub_exits_6_within_bounded_time() -> None:
    url = f"http://127.0.0.1:{free_port()}/shares/v2/async/demo"
    started = time.monotonic()
    done = run([url, "--retries=2", "--timeout=2"])
    assert done.code == 6
    line = one_line(done.stderr)
    assert "refused" in line and "3 failed attempts" in line
    assert time.monotonic() - started < 30


def test_unwritable_output_exits_7_before_any_request(tmp_path: Any) -> None:
    done = run(["https://hub.example.com/shares/v2/async/abc",
                f"-o={tmp_path}/missing/dir/out.json"], apikey="k")
    assert done.code == 7
    assert "missing/dir/out.json" in one_line(done.stderr)


def test_full_disk_exits_7(sim: Any) -> None:
    with open("/dev/full", "wb") as full:
        environment = dict(os.environ, APIKEY="demo-key")
        done = subprocess.run(command() + [share(sim)], stdout=full, stderr=subprocess.PIPE,
                              env=environment, timeout=60)
    assert done.returncode == 7
    assert "No space left" in one_line(done.stderr.decode())


def test_closed_pipe_exits_quietly(sim: Any) -> None:
    environment = dict(os.environ, APIKEY="demo-key")
    pipeline = subprocess.run(
        " ".join(command()) + f" {share(sim)} --format jsonl | head -n 3",
        shell=True, capture_output=True, env=environment, timeout=60)
    assert pipeline.stdout.count(b"\n") == 3
    assert b"Traceback" not in pipeline.stderr


def test_sigint_exits_130_with_valid_json_and_the_token(make_sim: Any) -> None:
    sim = make_sim(events=5000, page_max=500, job_latency=0.3)
    environment = dict(os.environ, APIKEY="demo-key")
    process = subprocess.Popen(command() + [share(sim), "--sort=_id"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=environment)
    time.sleep(2.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    import json

    events = json.loads(out)
    assert events == sim.share_events("demo")[:len(events)]
    assert 0 < len(events) < 5000 and len(events) % 500 == 0
    token = err.decode().rstrip("\n").split("\n")[-1]
    rest = run([share(sim), "--sort=_id", f"--token={token}"])
    assert events + rest.events == sim.share_events("demo")


def test_debug_never_shows_the_key(sim: Any) -> None:
    done = run([f"{sim.url}/shares/v2/demo?apikey=demo-key", "--limit=3", "--debug"],
               apikey=None)
    assert done.code == 0
    assert "demo-key" not in done.stderr
    assert "POST" in done.stderr  # the trace is there
