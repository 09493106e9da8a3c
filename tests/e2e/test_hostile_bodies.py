"""Hostile results bodies end in bounded time and memory: exit 6 and one line, not retried.

Each body is a few MB of gzip that inflates to 1 GiB or more: a gzip body may be several
members one after the other, so one member made once from a 16 MiB block is sent again and
again. The command line runs as a child process; its peak RSS comes from ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fakehub import SHARE, FakeHub, Seen, reply, streamed, tiny_share

from hubasync.core.bounds import DEFAULTS
from hubasync.events.splitter import MAX_DEPTH

from .helpers import command

KEY = "hostile-key-1"
BLOCK = 16 << 20
INFLATED = 1 << 30  # what each bomb inflates to, at least
MIB = 1 << 20

# The documented bounds (README, "Bounds against a hostile hub"). Generous for a loaded
# machine: each run takes a few seconds alone.
PEAK_RSS_REFUSED = 80 * MIB  # a body refused at a bound, default cap (measured: 27-39 MiB)
PEAK_RSS_AT_CAP = 400 * MIB  # an accepted event of the default cap, the worst kind (226 MiB)
WALL_SECONDS = 90


def member(data: bytes) -> bytes:
    """One whole gzip member holding ``data``."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


def bomb(head: bytes, block: bytes, tail: bytes, inflated: int = INFLATED) -> Tuple[bytes, ...]:
    """Gzip members: ``head``, ``block`` again and again up to ``inflated`` bytes, ``tail``."""
    packed = member(block)
    return (member(head),) + (packed,) * (inflated // len(block)) + (member(tail),)


def results_route(members: Tuple[bytes, ...]) -> Any:
    def chunks() -> Iterator[bytes]:
        for piece in members:
            for start in range(0, len(piece), 256 << 10):
                yield piece[start:start + (256 << 10)]
    return streamed(200, chunks, Content_Type="application/json", Content_Encoding="gzip")


class MeasuredRun:
    """One finished run of the command line, with its peak RSS and wall time."""

    def __init__(self, code: int, stdout: bytes, stderr: str, peak_rss: int,
                 seconds: float) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.peak_rss = peak_rss
        self.seconds = seconds


# Started from a fresh, small interpreter: on Linux a child's peak RSS starts at its parent's
# size when it was forked (the high-water mark is kept across exec), and pytest is large.
_LAUNCHER = """
import json, os, resource, subprocess, sys
args, out, err = json.loads(sys.argv[1])
with open(out, "wb") as stdout, open(err, "wb") as stderr:
    code = subprocess.call(args, stdout=stdout, stderr=stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([code, peak * (1 if sys.platform == "darwin" else 1024)]))
"""


def run_measured(args: List[str], tmp: Any) -> MeasuredRun:
    """Run the CLI to completion; its output goes to files, read afterwards."""
    env = {k: v for k, v in os.environ.items() if k != "APIKEY"}
    env["APIKEY"] = KEY
    out_path, err_path = tmp / "stdout", tmp / "stderr"
    spec = json.dumps([command("module") + args, str(out_path), str(err_path)])
    started = time.monotonic()
    try:
        launched = subprocess.run([sys.executable, "-c", _LAUNCHER, spec], env=env,
                                  capture_output=True, timeout=WALL_SECONDS * 2)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not end within {WALL_SECONDS * 2} s")
    seconds = time.monotonic() - started
    assert launched.returncode == 0, launched.stderr
    code, peak = json.loads(launched.stdout)
    if os.environ.get("HUBASYNC_SHOW_RSS"):
        print(f"\n{args[1:]}: {peak >> 20} MiB, {seconds:.1f} s", file=sys.stderr)
    return MeasuredRun(code, out_path.read_bytes(),
                 err_path.read_bytes().decode("utf-8", "replace"), peak, seconds)


def hub_serving(members: Tuple[bytes, ...]) -> FakeHub:
    routes: Dict[Tuple[str, str], Any] = tiny_share(apikey=KEY)
    routes[("GET", f"{SHARE}/results/1")] = results_route(members)
    return FakeHub(routes=routes)


def results_fetches(hub: FakeHub) -> List[Seen]:
    return [seen for seen in hub.requests if seen.path == f"{SHARE}/results/1"]


CAP_TEXT = f"{DEFAULTS.max_event_size >> 20} MiB"

BOMBS = [
    pytest.param((b'[{"a":"', b"x" * BLOCK, b'"}]'),
                 f"an event larger than {CAP_TEXT} (--max-event-size): ", id="one-string"),
    pytest.param((b'[{"a":1}', b" \n" * (BLOCK // 2), b"]"),
                 f"more than {CAP_TEXT} of whitespace between two events (--max-event-size): ",
                 id="whitespace-between-events"),
    pytest.param((b'[{"a":1}]', b"\r\n\t " * (BLOCK // 4), b""),
                 f"more than {CAP_TEXT} of whitespace between two events (--max-event-size): ",
                 id="whitespace-after-the-array"),
    pytest.param((b'[{"a":"b","c":', b" " * BLOCK, b"1}]"),
                 f"an event larger than {CAP_TEXT} (--max-event-size): ",
                 id="whitespace-inside-an-event"),
    pytest.param((b'[{"a":', b"[" * BLOCK, b""),
                 f"an event nested deeper than {MAX_DEPTH} levels", id="nesting"),
    pytest.param((b'[{"a":[', b"[]," * (BLOCK // 3), b"[]]}]"),
                 f"an event larger than {CAP_TEXT} (--max-event-size): ", id="flat-brackets"),
    pytest.param((b'[{"a":', b"{}," * (BLOCK // 3), b"{}}]"),
                 f"an event larger than {CAP_TEXT} (--max-event-size): ", id="flat-braces"),
]


@pytest.mark.parametrize("parts, message", BOMBS)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_decompression_bomb_ends_in_bounded_time_and_memory(
        parts: Tuple[bytes, bytes, bytes], message: str, fmt: str, tmp_path: Any) -> None:
    members = bomb(*parts)
    assert sum(map(len, members)) < 8 * MIB  # a few MB on the wire, >= 1 GiB inflated
    with hub_serving(members) as hub:
        done = run_measured([hub.url + SHARE, f"--format={fmt}", "-o",
                             str(tmp_path / "out")], tmp_path)
        fetches = len(results_fetches(hub))
    lines = done.stderr.strip().split("\n")
    assert done.code == 6, done.stderr
    assert len(lines) == 1 and lines[0].startswith("hubasync: " + message), done.stderr
    assert fetches == 1  # not retried: the hub would send the same again
    assert not (tmp_path / "out").exists()  # nothing was written of a failed first page
    assert done.seconds < WALL_SECONDS
    assert done.peak_rss < PEAK_RSS_REFUSED, f"peak RSS {done.peak_rss >> 20} MiB"


def cap_sized_nested_event(size: int) -> bytes:
    """``{"a":[[[...[0]...]],...]}`` of exactly ``size`` bytes, lists 500 deep: the costliest
    event to decode we know of (about 55 times its size as Python objects)."""
    nest = b"[" * 500 + b"0" + b"]" * 500 + b","
    head, tail = b'{"a":[', b"0]}"
    event = head + nest * ((size - len(head) - len(tail)) // len(nest)) + tail
    return event[:-1] + b" " * (size - len(event)) + b"}"


@pytest.mark.parametrize("over", [0, 1], ids=["at-the-cap", "one-byte-over"])
@pytest.mark.parametrize("strict", [False, True], ids=["loose", "strict"])
def test_an_event_at_the_cap_passes_one_byte_more_ends_the_run(
        over: int, strict: bool, tmp_path: Any) -> None:
    event = cap_sized_nested_event(DEFAULTS.max_event_size + over)
    members = (member(b'[{"b":1},' + event + b',{"c":2}]'),)
    out = tmp_path / "out.json"
    with hub_serving(members) as hub:
        done = run_measured([hub.url + SHARE, "-o", str(out)] + (["--strict"] * strict),
                            tmp_path)
        fetches = len(results_fetches(hub))
    assert done.seconds < WALL_SECONDS
    assert done.peak_rss < PEAK_RSS_AT_CAP, f"peak RSS {done.peak_rss >> 20} MiB"
    if over:
        assert done.code == 6
        assert done.stderr == (
            f"hubasync: an event larger than {CAP_TEXT} (--max-event-size): the hub sent at "
            f"least {len(event):,} bytes of one event, from byte 9 of the body\n")
        assert fetches == 1
        assert not out.exists()
    else:
        assert done.code == 0, done.stderr
        # Batches are joined by ",\n"; the event holds no line break of its own.
        assert out.read_bytes().replace(b",\n", b",") == b'[\n{"b":1},' + event + b',{"c":2}\n]\n'


def test_csv_of_an_event_at_the_cap_stays_within_the_bound(tmp_path: Any) -> None:
    # CSV decodes every event (and writes the nested list as one JSON cell).
    event = cap_sized_nested_event(DEFAULTS.max_event_size)
    with hub_serving((member(b"[" + event + b"]"),)) as hub:
        done = run_measured([hub.url + SHARE, "--format=csv", "-o", str(tmp_path / "out.csv")],
                            tmp_path)
    assert done.code == 0, done.stderr
    assert done.seconds < WALL_SECONDS
    assert done.peak_rss < PEAK_RSS_AT_CAP, f"peak RSS {done.peak_rss >> 20} MiB"
    assert (tmp_path / "out.csv").read_bytes().startswith(b'a,extra\r\n"[[[')


def test_a_larger_cap_lets_a_larger_event_through(tmp_path: Any) -> None:
    event = b'{"a":"' + b"x" * (DEFAULTS.max_event_size + 100) + b'"}'
    members = (member(b"[" + event + b"]"),)
    out = tmp_path / "out.jsonl"
    with hub_serving(members) as hub:
        refused = run_measured([hub.url + SHARE, "--format=jsonl", "-o", str(out)], tmp_path)
        allowed = run_measured([hub.url + SHARE, "--format=jsonl", "-o", str(out),
                                "--max-event-size=5M"], tmp_path)
    assert refused.code == 6 and "(--max-event-size)" in refused.stderr
    assert allowed.code == 0, allowed.stderr
    assert out.read_bytes() == event + b"\n"


@pytest.mark.parametrize("value, problem", [
    ("0", "must be at least 1 KiB and at most 4 GiB"),
    ("1023", "must be at least 1 KiB and at most 4 GiB"),
    ("5G", "must be at least 1 KiB and at most 4 GiB"), ("8X", "not a size in bytes"),
    ("", "not a size in bytes"), ("M", "not a size in bytes"),
])
def test_max_event_size_is_checked(value: str, problem: str, tmp_path: Any) -> None:
    done = run_measured(["http://127.0.0.1:9/shares/v2/async/x", f"--max-event-size={value}"],
                        tmp_path)
    assert done.code == 2
    assert problem in done.stderr and done.stderr.count("\n") == 1


def test_max_event_size_units() -> None:
    from hubasync.cli.main import settings_from

    def size(text: Optional[str]) -> int:
        argv = ["http://127.0.0.1:9/shares/v2/async/x", "-k", "k"]
        if text is not None:
            argv.append(f"--max-event-size={text}")
        return settings_from(argv).bounds.max_event_size

    assert size(None) == DEFAULTS.max_event_size == 4 * MIB
    assert size("1024") == 1024
    assert size("512K") == size("512KiB") == size("512kb") == 512 << 10
    assert size("64M") == 64 * MIB
    assert size("1G") == 1 << 30


def test_strict_refuses_nan_end_to_end() -> None:
    routes = tiny_share(apikey=KEY)
    routes[("GET", f"{SHARE}/results/1")] = reply(200, b'[{"a":1},{"a":NaN}]')
    env = {k: v for k, v in os.environ.items() if k != "APIKEY"}
    env["APIKEY"] = KEY
    with FakeHub(routes=routes) as hub:
        loose = subprocess.run(command("module") + [hub.url + SHARE], env=env,
                               capture_output=True, timeout=120)
        strict = subprocess.run(command("module") + [hub.url + SHARE, "--strict",
                                                     "--retries=0"],
                                env=env, capture_output=True, timeout=120)
    assert loose.returncode == 0
    assert strict.returncode == 6
    assert b"NaN is not standard JSON" in strict.stderr


def test_the_library_has_the_same_bounds() -> None:
    import hubasync

    big = b'{"a":"' + b"x" * 2000 + b'"}'
    routes = tiny_share(apikey=KEY)
    routes[("GET", f"{SHARE}/results/1")] = reply(200, b'[{"a":1},' + big + b"]")
    with FakeHub(routes=routes) as hub:
        small = hubasync.Client(hub.url + SHARE, apikey=KEY, retries=3, max_event_size=1024)
        with pytest.raises(hubasync.BodyTooLarge, match=r"larger than 1 KiB"):
            list(small.events())
        assert len(results_fetches(hub)) == 1  # not retried
        large = hubasync.Client(hub.url + SHARE, apikey=KEY, max_event_size=4096)
        assert [event["a"] for event in large.events()] == [1, "x" * 2000]
    routes[("GET", f"{SHARE}/results/1")] = reply(200, b'[{"a":1},{"b":Infinity}]')
    with FakeHub(routes=routes) as hub:
        strict = hubasync.Client(hub.url + SHARE, apikey=KEY, retries=0)
        with pytest.raises(hubasync.HubUnavailable, match="Infinity is not standard JSON"):
            list(strict.events())
    for wrong, error in ((1023, ValueError), (0, ValueError), ("4M", TypeError),
                         (2.0**20, TypeError), (True, TypeError)):
        with pytest.raises(error, match="max_event_size"):
            hubasync.Client("http://127.0.0.1:9/shares/v2/async/x", apikey=KEY,
                            max_event_size=wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b'[{"a":1}]]', b'[{"a":1}, 5]', b'[{"a":1}] {"b":2}'])
def test_a_body_that_is_not_an_array_of_objects_is_not_called_cut_short(body: bytes) -> None:
    routes = tiny_share(apikey=KEY)
    routes[("GET", f"{SHARE}/results/1")] = reply(200, body)
    env = {k: v for k, v in os.environ.items() if k != "APIKEY"}
    env["APIKEY"] = KEY
    with FakeHub(routes=routes) as hub:
        done = subprocess.run(command("module") + [hub.url + SHARE, "--retries=0"], env=env,
                              capture_output=True, timeout=120)
    stderr = done.stderr.decode()
    assert done.returncode == 6
    assert "response body is not a JSON array of objects: expected " in stderr, stderr
    assert "cut short" not in stderr and stderr.count("\n") == 1
