"""Each documented exit code, reached by a real run; one clear line, no traceback, no key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from typing import Any

import pytest
from fakehub import SHARE, FakeHub, Reply, Seen, reply
from processes import refused_port, wait_until

from .helpers import Run, command, one_line, run, share, start


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
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/shares/v2/async/demo"
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


PAGE_ONE = [{"n": str(number), "feed": "alpha"} for number in range(200)]
PAGE_TWO = [{"n": str(number), "feed": "beta"} for number in range(200, 300)]


def two_page_hub(release: threading.Event) -> FakeHub:
    """A hub whose second job stays pending (202) until ``release`` is set."""
    def post(hub: FakeHub, seen: Seen) -> Reply:
        job = "2" if "token=T1" in seen.target else "1"
        return reply(202, Location=f"{SHARE}/jobs/{job}")

    def second_status(hub: FakeHub, seen: Seen) -> Reply:
        if release.is_set():
            return reply(302, Location=f"{SHARE}/results/2")
        return reply(202, Location=f"{SHARE}/jobs/2", Retry_After="0.05")

    return FakeHub(routes={
        ("POST", SHARE): post,
        ("GET", f"{SHARE}/jobs/1"): reply(302, Location=f"{SHARE}/results/1"),
        ("GET", f"{SHARE}/results/1"): reply(200, json.dumps(PAGE_ONE).encode(),
                                             Content_Type="application/json",
                                             X_Next_Token="T1"),
        ("GET", f"{SHARE}/jobs/2"): second_status,
        ("GET", f"{SHARE}/results/2"): reply(200, json.dumps(PAGE_TWO).encode(),
                                             Content_Type="application/json"),
    })


def polls_of_job_two(hub: FakeHub) -> int:
    with hub.lock:
        return sum(1 for seen in hub.requests if seen.path == f"{SHARE}/jobs/2")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_a_pending_job_exits_130_with_valid_json_and_the_token(
        signum: int) -> None:
    release = threading.Event()
    with two_page_hub(release) as hub:
        with start([hub.url + SHARE], apikey="key") as child:
            # the run is waiting on the network: page 1 is written, job 2 is being polled
            wait_until(lambda: polls_of_job_two(hub) >= 3, "the pending job to be polled",
                       child=child)
            child.send_signal(signum)
            started = time.monotonic()
            assert child.wait() == 130, child.stderr_text()
            assert time.monotonic() - started < 10  # at once, not after the job or a timeout
            assert json.loads(child.stdout_bytes()) == PAGE_ONE
            lines = child.stderr_text().splitlines()
            assert "Traceback" not in child.stderr_text()
            assert lines[-1] == "T1", lines  # the token that continues after page 1
            assert any("interrupted" in line or "stopped" in line for line in lines), lines
        assert polls_of_job_two(hub) >= 3
        release.set()
        rest = run([hub.url + SHARE, "--token=T1"], apikey="key")
    assert rest.code == 0, rest.stderr
    assert rest.events == PAGE_TWO


def test_debug_never_shows_the_key(sim: Any) -> None:
    done = run([f"{sim.url}/shares/v2/demo?apikey=demo-key", "--limit=3", "--debug"],
               apikey=None)
    assert done.code == 0
    assert "demo-key" not in done.stderr
    assert "POST" in done.stderr  # the trace is there


def run_with_closed(streams: str, args: list[str], apikey: str = "demo-key") -> Run:
    """Run the CLI with some standard streams closed: ``streams`` is e.g. ``">&-"``."""
    environment = dict(os.environ, APIKEY=apikey)
    done = subprocess.run(["sh", "-c", f'exec "$@" {streams}', "sh", *command(), *args],
                          capture_output=True, env=environment, timeout=120)
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def test_closed_stdout_without_output_file_exits_7_before_any_request(sim: Any) -> None:
    done = run_with_closed(">&-", [share(sim)])
    assert done.code == 7, done.stderr
    assert "standard output is closed" in one_line(done.stderr)
    assert sim.stats.requests["post"] == 0
    done = run_with_closed(">&-", [share(sim, tail="/count")])
    assert done.code == 7, done.stderr


def test_closed_stdout_with_an_output_file_works(sim: Any, tmp_path: Any) -> None:
    out = tmp_path / "out.json"
    done = run_with_closed(">&- <&-", [share(sim), "--sort=_id", "-o", str(out)])
    assert done.code == 0, done.stderr
    assert json.loads(out.read_bytes()) == sim.share_events("demo")


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_closed_stderr_changes_no_exit_code_and_no_output(sim: Any, tmp_path: Any,
                                                          debug: list[str]) -> None:
    out = tmp_path / "out.json"
    done = run_with_closed("2>&-", [share(sim), "--sort=_id", "-o", str(out), *debug])
    assert done.code == 0
    assert done.stdout == b""  # nothing meant for stderr comes out on stdout
    assert json.loads(out.read_bytes()) == sim.share_events("demo")  # nor in the file
    done = run_with_closed("2>&-", [share(sim), "--limit=5", *debug])
    assert done.code == 0
    assert len(json.loads(done.stdout)) == 5
    assert run_with_closed("2>&-", [share(sim), *debug], apikey="wrong").code == 3
    assert run_with_closed("2>&-", [share(sim), "--limit=0", *debug]).code == 2
    assert run_with_closed("2>&-", [share(sim, "nosuchshare"), *debug]).code == 4


@pytest.mark.parametrize("content", [b"not a certificate\n", b"", b"\x00\xff" * 100])
def test_cacert_that_is_not_pem_exits_2(tmp_path: Any, content: bytes) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(content)
    done = run(["https://hub.example.com/shares/v2/async/abc", f"--cacert={path}"])
    assert done.code == 2, done.stderr
    line = one_line(done.stderr)
    assert "--cacert" in line and str(path) in line and "PEM" in line


def test_cacert_that_is_a_directory_exits_2(tmp_path: Any) -> None:
    done = run(["https://hub.example.com/shares/v2/async/abc", f"--cacert={tmp_path}"])
    assert done.code == 2, done.stderr
    assert "--cacert" in one_line(done.stderr)


@pytest.mark.parametrize("option", ["--token", "--start", "--filter", "--sort", "--param"])
def test_option_bytes_that_cannot_be_encoded_exit_2_naming_the_option(option: str) -> None:
    value = b"x=\xff\xfe" if option == "--param" else b"\xff\xfeabc"
    environment = dict(os.environ, APIKEY="k", LC_ALL="C.UTF-8")
    done = subprocess.run(
        [os.fsencode(part) for part in command()]
        + [b"https://hub.example.com/shares/v2/async/abc", option.encode() + b"=" + value],
        capture_output=True, env=environment, timeout=60)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert option in one_line(stderr)


@pytest.mark.parametrize("name", ["limit", "token", "LIMIT"])
def test_param_limit_or_token_is_refused(name: str) -> None:
    done = run(["https://hub.example.com/shares/v2/async/abc", f"--param={name}=5"], apikey="k")
    assert done.code == 2, done.stderr
    assert f"--{name.lower()}" in one_line(done.stderr)
