"""``make bench``: hubasync against the floor (and the vendor's library) on hubasync-sim.

    python bench/run.py [--repeat N] [--quick] [--only SCENARIO] [--write-doc]

For each scenario a simulator is started as its own process (``python -m hubasync.sim --port 0``)
and every client is run against it as its own process, timed by wall clock from spawn to exit,
its peak memory taken from ``os.wait4``'s ``ru_maxrss`` (a small launcher process spawns
them, so that they do not inherit the bench's own high-water mark). The clients:

- the floor (bench/floor.py): post, poll the moment the job is done, fetch, gunzip, write the
  bytes; parse nothing;
- hubasync (``async.py URL --format FMT -o FILE``), in each format the scenario asks for;
- the vendor's library (bench/vendor_client.py), when ``arcticsecurity`` can be imported.

Each scenario first runs every client once, uncounted (the simulator encodes and caches pages
on first use), then ``--repeat`` repetitions, the clients interleaved within each one so that
drift in the machine's load hits them alike. The report is a Markdown table of medians, min-max,
the ratio of medians to the floor's, the worst peak RSS, and the goals. Each output of
hubasync and of the vendor's library is checked (outside the timed part) to hold as many events
as the share has. ``--write-doc`` puts the table and a description of the machine into the
results section of docs/benchmarks.md. See that file for the method.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from floor import Floor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
BEGIN = "<!-- results:begin (written by bench/run.py --write-doc) -->"
END = "<!-- results:end -->"
APIKEY = "demo-key"
MEMORY_GOAL_MB = 64.0
SHARE = "demo"

csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class Client:
    """One way of downloading a share: a label, and what its output is checked as."""

    label: str
    kind: str  # "floor", "hubasync", "baseline" (hubasync of another checkout) or "vendor"
    fmt: str = "json"
    goal: Optional[float] = None  # the most time allowed, as a multiple of the floor's
    root: str = ROOT  # the checkout whose async.py is run (hubasync and baseline)
    options: Tuple[str, ...] = ()  # more options of async.py (--strict)
    stdlib: bool = False  # run without orjson (the fast extra), though it is installed

    def command(self, sim_url: str, output: str, latency: float) -> List[str]:
        py = sys.executable
        if self.kind == "floor":
            return [py, os.path.join(HERE, "floor.py"), f"{sim_url}/shares/v2/async/{SHARE}",
                    output, "--latency", str(latency), "--apikey", APIKEY]
        if self.kind in ("hubasync", "baseline"):
            script = [os.path.join(self.root, "async.py")]
            if self.stdlib:
                script = [os.path.join(HERE, "without_orjson.py")] + script
            return [py, *script, f"{sim_url}/shares/v2/async/{SHARE}", "--format", self.fmt,
                    "-o", output, *self.options]
        return [py, os.path.join(HERE, "vendor_client.py"),
                f"{sim_url}/shares/v2/{SHARE}?apikey={APIKEY}", output]


@dataclass(frozen=True)
class Scenario:
    """A simulator configuration and the clients run against it."""

    name: str
    title: str
    sim_args: Tuple[str, ...]
    latency: float
    clients: Tuple[Client, ...]


@dataclass
class Run:
    """One timed run of one client."""

    seconds: float
    peak_mb: float
    error: Optional[str] = None


@dataclass
class Cell:
    """Every counted run of one client in one scenario."""

    runs: List[Run] = field(default_factory=list)
    na: Optional[str] = None  # why the client could not run here

    @property
    def failure(self) -> Optional[str]:
        for run in self.runs:
            if run.error:
                return run.error
        return None


def with_baseline(scenario: Scenario, root: str) -> Scenario:
    """The scenario with each hubasync client run from ``root`` too, right after it."""
    clients: List[Client] = []
    for client in scenario.clients:
        clients.append(client)
        if client.kind == "hubasync" and not client.stdlib:  # the baseline has no orjson path
            clients.append(Client(client.label.replace("hubasync", "baseline"), "baseline",
                                  client.fmt, root=root, options=client.options))
    return Scenario(scenario.name, scenario.title, scenario.sim_args, scenario.latency,
                    tuple(clients))


def scenarios(quick: bool) -> List[Scenario]:
    """The three scenarios (bulk smaller under --quick)."""
    floor = Client("floor", "floor")
    vendor_clients = (Client("arcticsecurity 0.2 (vendor)", "vendor"),)
    bulk_events = 200_000 if quick else 1_000_000
    return [
        Scenario(
            "bulk", f"{bulk_events:,} events, pages of 100,000",
            ("--events", str(bulk_events), "--page-max", "100000", "--job-latency", "0"), 0.0,
            (floor,
             Client("hubasync json", "hubasync", "json", 1.25),
             Client("hubasync jsonl", "hubasync", "jsonl", 1.4),
             Client("hubasync csv", "hubasync", "csv", 3.0),
             Client("hubasync csv, no orjson", "hubasync", "csv", 3.0, stdlib=True),
             Client("hubasync json --strict", "hubasync", "json", 3.0, options=("--strict",)),
             Client("hubasync json --strict, no orjson", "hubasync", "json", 3.0,
                    options=("--strict",), stdlib=True))
            + vendor_clients),
        Scenario(
            "big", "100,000 events of about 1.3 KB, one page",
            ("--events", "100000", "--event-size", "1300", "--page-max", "100000"), 0.0,
            (floor, Client("hubasync json", "hubasync", "json")) + vendor_clients),
        Scenario(
            "latency", "20 pages of 1,000 events, jobs of 0.3 s, Retry-After: 1",
            ("--events", "20000", "--page-max", "1000", "--job-latency", "0.3",
             "--retry-after", "1"), 0.3,
            (floor, Client("hubasync json", "hubasync", "json", 1.15)) + vendor_clients),
    ]


class Sim:
    """hubasync-sim in its own process, so its CPU time is not the bench's."""

    def __init__(self, args: Sequence[str], log_path: str) -> None:
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubasync.sim", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError(f"the simulator did not start; see {log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: SIGINT may be ignored in a background job
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


def share_count(sim_url: str, latency: float) -> int:
    """The share's event count, asked of the count endpoint with the floor's code."""
    floor = Floor(f"{sim_url}/shares/v2/async/{SHARE}/count", APIKEY)
    body = io.BytesIO()
    floor.page(f"{sim_url}/shares/v2/async/{SHARE}/count", None, latency, body)
    floor.conn.close()
    return int(json.loads(body.getvalue())["count"])


LAUNCHER = r"""
import json, os, sys, time
os.chdir(sys.argv[1])
for line in sys.stdin:
    job = json.loads(line)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(job["argv"][0], job["argv"], job["env"], file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "maxrss_kib": usage.ru_maxrss,
                      "exit": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Launcher:
    """Spawns and times the clients from a small process of its own.

    On Linux a child's ``ru_maxrss`` starts at the high-water mark of the memory it was forked
    (or vforked) from and carries it through ``exec``: spawned from this process, which grows to
    gigabytes while it checks outputs, every client would seem that big. The launcher is a bare
    ``python -S`` (about 10 MB, less than any client's own peak) that does nothing but
    ``posix_spawn``, ``wait4`` and report, one client at a time.
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, ROOT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, command: List[str], stderr_path: str) -> Run:
        """Spawn, wait with wait4: wall seconds from spawn to exit, and the child's peak RSS."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        env = dict(os.environ, APIKEY=APIKEY)
        job = {"argv": command, "env": env, "stderr": stderr_path}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        run = Run(answer["seconds"], answer["maxrss_kib"] / 1024.0)  # KiB on Linux
        if answer["exit"] != 0:
            with open(stderr_path, "rb") as handle:
                lines = handle.read().decode("utf-8", "replace").strip().splitlines()
            run.error = f"exit {answer['exit']}: {lines[-1] if lines else 'no message'}"
        return run

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def count_events(path: str, fmt: str) -> int:
    """Events in an output file, read the slow and sure way."""
    if fmt == "json":
        with open(path, "rb") as handle:
            data = json.load(handle)
        if not isinstance(data, list):
            raise ValueError("not a JSON array")
        return len(data)
    if fmt == "jsonl":
        count = 0
        with open(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    count += 1
        return count
    with open(path, newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle))
    return max(rows - 1, 0)


def run_client(launcher: Launcher, client: Client, sim: Sim, scenario: Scenario,
               workdir: str, expected: int) -> Run:
    """One run of a client, then (untimed) the check of its output; the output is deleted."""
    output = os.path.join(workdir, f"out.{client.fmt}")
    run = launcher.run(client.command(sim.url, output, scenario.latency),
                       os.path.join(workdir, "client.stderr"))
    if run.error is None and client.kind != "floor":
        try:
            got = count_events(output, client.fmt)
        except (OSError, ValueError) as exc:
            run.error = f"unreadable output: {exc}"
        else:
            if got != expected:
                run.error = f"wrong output: {got} events, the share has {expected}"
    for name in os.listdir(workdir):
        if name.startswith("out."):
            os.unlink(os.path.join(workdir, name))
    return run


def run_scenario(launcher: Launcher, scenario: Scenario, repeat: int, workdir: str,
                 vendor_na: Optional[str]) -> Tuple[Dict[str, Cell], int]:
    """Warm up, then ``repeat`` interleaved repetitions; the cells by client label."""
    cells: Dict[str, Cell] = {c.label: Cell() for c in scenario.clients}
    t0 = time.perf_counter()
    sim = Sim(scenario.sim_args, os.path.join(workdir, f"sim-{scenario.name}.log"))
    try:
        expected = share_count(sim.url, scenario.latency)
        note(f"{scenario.name} ({scenario.title}): simulator up in "
             f"{time.perf_counter() - t0:.1f} s, {expected:,} events")
        active = []
        for client in scenario.clients:
            if client.kind == "vendor" and vendor_na:
                cells[client.label].na = vendor_na
            else:
                active.append(client)
        for client in active:
            run = run_client(launcher, client, sim, scenario, workdir, expected)
            note(f"  warm-up  {client.label:30} {run.seconds:7.2f} s {run.peak_mb:7.1f} MB"
                 + (f"  {run.error}" if run.error else ""))
            if run.error and client.kind == "vendor":
                cells[client.label].na = f"fails: {run.error}"
        for i in range(repeat):
            for client in active:
                cell = cells[client.label]
                if cell.na:
                    continue
                run = run_client(launcher, client, sim, scenario, workdir, expected)
                cell.runs.append(run)
                note(f"  run {i + 1}/{repeat}  {client.label:30} {run.seconds:7.2f} s "
                     f"{run.peak_mb:7.1f} MB" + (f"  {run.error}" if run.error else ""))
    finally:
        sim.stop()
    return cells, expected


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def table(results: List[Tuple[Scenario, Dict[str, Cell], int]]) -> Tuple[str, List[str]]:
    """The Markdown table, and one line for each goal that is not met."""
    lines = ["| scenario | client | median s | min–max s | × floor | peak RSS MB | goal | met |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    missed: List[str] = []
    for scenario, cells, _ in results:
        floor_runs = [r.seconds for r in cells["floor"].runs if r.error is None]
        floor_median = statistics.median(floor_runs) if floor_runs else None
        for client in scenario.clients:
            cell = cells[client.label]
            goal = met = ""
            if client.kind == "hubasync":
                goal = (f"≤ {client.goal:g}×, " if client.goal else "") + f"< {MEMORY_GOAL_MB:g} MB"
            if cell.na or not cell.runs:
                lines.append(f"| {scenario.name} | {client.label} | n/a: {cell.na or 'not run'} "
                             f"| | | | {goal} | |")
                continue
            if cell.failure:
                lines.append(f"| {scenario.name} | {client.label} | failed: {cell.failure} "
                             f"| | | | {goal} | no |")
                if client.kind == "hubasync":
                    missed.append(f"{scenario.name}, {client.label}: {cell.failure}")
                continue
            secs = [r.seconds for r in cell.runs]
            median = statistics.median(secs)
            peak = max(r.peak_mb for r in cell.runs)
            ratio = median / floor_median if floor_median else float("nan")
            if client.kind == "hubasync":
                reasons = []
                if client.goal and not ratio <= client.goal:
                    reasons.append(f"time {ratio:.2f}× > {client.goal:g}×")
                if peak >= MEMORY_GOAL_MB:
                    reasons.append(f"memory {peak:.1f} MB")
                met = "yes" if not reasons else "**no** (" + ", ".join(reasons) + ")"
                if reasons:
                    missed.append(f"{scenario.name}, {client.label}: " + ", ".join(reasons))
            lines.append(f"| {scenario.name} | {client.label} | {median:.2f} | "
                         f"{min(secs):.2f}–{max(secs):.2f} | {ratio:.2f} | {peak:.1f} | "
                         f"{goal} | {met} |")
    return "\n".join(lines), missed


def machine() -> str:
    """One paragraph: CPU, cores, RAM, OS, Python, load, date."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            match = re.search(r"MemTotal:\s+(\d+) kB", handle.read())
        if match:
            ram = f"{int(match.group(1)) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{cpu}, {cores} cores available ({os.cpu_count()} online), {ram} RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()} "
            f"({sys.executable}); load average {load} at the start; {date}.")


def revision() -> str:
    """The commit measured (read-only git commands), and whether the tree differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff-index", "--quiet", "HEAD", "--", "src"],
                               cwd=ROOT, capture_output=True).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "hubasync from an unknown revision"
    return f"hubasync at commit {head}" + (" with uncommitted changes in src/" if dirty else "")


def vendor_unavailable() -> Optional[str]:
    if importlib.util.find_spec("arcticsecurity") is None:
        return "arcticsecurity is not installed"
    return None


def write_doc(section: str) -> None:
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"run.py: {DOC} has no results markers ({BEGIN} ... {END})")
    text = text[:start + len(BEGIN)] + "\n\n" + section.strip() + "\n\n" + text[end:]
    with open(DOC, "w", encoding="utf-8") as handle:
        handle.write(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None, metavar="N",
                        help="counted runs of each client in each scenario (default 5; 2 with "
                             "--quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast check: 2 repetitions and 200,000 bulk events")
    parser.add_argument("--only", action="append", choices=("bulk", "big", "latency"),
                        help="run only this scenario (repeatable)")
    parser.add_argument("--no-vendor", action="store_true",
                        help="leave out the vendor's library")
    parser.add_argument("--write-doc", action="store_true",
                        help="replace the results section of docs/benchmarks.md")
    parser.add_argument("--baseline", metavar="DIR", default=None,
                        help="also run the async.py of another checkout (e.g. a git worktree of "
                             "an earlier commit), interleaved with this one, for a before/after "
                             "in one run")
    parser.add_argument("--tmpdir", default=None,
                        help="where the outputs are written (default: the system's temp dir)")
    args = parser.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    vendor_na = "left out (--no-vendor)" if args.no_vendor else vendor_unavailable()
    described = machine()
    measured = revision()
    note(described)
    results: List[Tuple[Scenario, Dict[str, Cell], int]] = []
    workdir = tempfile.mkdtemp(prefix="hubasync-bench-", dir=args.tmpdir)
    started = time.perf_counter()
    launcher = Launcher()
    try:
        for scenario in scenarios(args.quick):
            if args.only and scenario.name not in args.only:
                continue
            if args.baseline:
                scenario = with_baseline(scenario, os.path.abspath(args.baseline))
            cells, expected = run_scenario(launcher, scenario, repeat, workdir, vendor_na)
            results.append((scenario, cells, expected))
    finally:
        launcher.close()
        shutil.rmtree(workdir, ignore_errors=True)
    body, missed = table(results)
    legend = "\n".join(f"- **{s.name}**: {s.title} (`hubasync-sim {' '.join(s.sim_args)}`)"
                       for s, _, _ in results)
    section = "\n\n".join([
        f"Machine: {described}",
        f"{measured} (at the start); {repeat} counted runs of each client per scenario, "
        f"after one uncounted warm-up run each; the whole bench took "
        f"{time.perf_counter() - started:.0f} s.",
        legend,
        body,
        "The vendor's example `async.py` script is not on this machine (only its README is), so it "
        "has no row.",
        ("Goals not met:\n\n" + "\n".join(f"- {m}" for m in missed)) if missed
        else "Every goal is met.",
    ])
    print(section)
    if args.write_doc:
        write_doc(section)
        note(f"wrote the results into {DOC}")
    broken = any(cell.failure for scenario, cells, _ in results for client in scenario.clients
                 if client.kind != "vendor" for cell in [cells[client.label]])
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
