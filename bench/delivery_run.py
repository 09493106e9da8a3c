"""Delivering a whole share against writing it: ``hubasync URL --sort _id --format jsonl -o FILE
--state STATE`` (the baseline) side by side with the same run delivering ``--to`` a real rsyslog
over RELP, to librdkafka's mock Kafka cluster, and to both.

    python bench/delivery_run.py [--events N] [--repeat N] [--profile CLIENT] [--write-doc]

The simulator (``hubasync-sim --events N --page-max 100000``) runs as its own process, and each
client too, spawned and timed (wall clock from spawn to exit, peak RSS from ``wait4``) by
bench/run.py's launcher. The clients are interleaved within each repetition; the table gives
the medians, the ratio to the baseline's median and the worst peak RSS. Outside the timed part
each run is checked: the file holds every event, rsyslog wrote every event, the topic holds
every event.

The receivers are started by the bench before each run (outside the timed part):

- rsyslog (``tests/receivers/rsyslog.py``) with imrelp, writing ``%msg%`` lines to a file
  through its ruleset's in-memory queue (``memory``: rsyslog's usual setting; an event is
  acknowledged once queued). ``direct`` would make omfile's writes part of every
  acknowledgement, ``disk`` a sync per event (60-1,000 events/s here: it measures the disk).
  Its CPU time is read from /proc/PID/stat after the run.
- the mock Kafka cluster, three brokers, held by this process (``tests/receivers/kafka.py``).

``--profile CLIENT`` runs that client once more under cProfile and prints where its time goes.
``--write-doc`` puts the table into docs/delivery.md (between its delivery-bench markers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "tests")]

from run import Launcher, Run, Sim, machine, note, revision  # noqa: E402

DOC = os.path.join(ROOT, "docs", "delivery.md")
BEGIN = "<!-- delivery-bench:begin (written by bench/delivery_run.py --write-doc) -->"
END = "<!-- delivery-bench:end -->"
SHARE = "demo"
GOAL = 2.0  # the most time a delivering run may take, as a multiple of the baseline's
MEMORY_GOAL_MB = 64.0


@dataclass
class Receivers:
    """What one run delivers to: the --to URLs, a check of what arrived, the receiver's CPU."""

    to: List[str] = field(default_factory=list)
    checks: List[Callable[[int], Optional[str]]] = field(default_factory=list)
    closers: List[Callable[[], None]] = field(default_factory=list)
    # each receiver's CPU seconds since it started: rsyslog's read once it wrote every event
    # out, the mock cluster's (threads of this process) at the end of the run
    cpu: Dict[str, Callable[[], float]] = field(default_factory=dict)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def rsyslog_cpu(pid: int) -> float:
    """Seconds of CPU (user and system) the process ``pid`` used so far."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_rsyslog(receivers: Receivers, folder: str) -> None:
    from receivers.rsyslog import Rsyslog

    receiver = Rsyslog(folder, ["relp"], template="%msg%\n", queue="memory").start()
    receivers.closers.append(receiver.stop)
    assert receiver.process is not None
    pid, before = receiver.process.pid, rsyslog_cpu(receiver.process.pid)
    receivers.to.append(receiver.url("relp"))
    receivers.cpu["rsyslog"] = lambda: rsyslog_cpu(pid) - before

    def check(expected: int) -> Optional[str]:
        deadline = time.monotonic() + 600
        written = receiver.count()  # read whole each time: polled twice a second only
        while written < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            written = receiver.count()
        return None if written == expected else f"rsyslog wrote {written} of {expected}"

    receivers.checks.append(check)


def start_kafka(receivers: Receivers) -> None:
    from receivers.kafka import MockKafka

    cluster = MockKafka(brokers=3)
    receivers.closers.append(cluster.close)
    receivers.to.append(cluster.url("bench"))
    started = time.process_time()
    receivers.cpu["kafka"] = lambda: time.process_time() - started

    def check(expected: int) -> Optional[str]:
        import confluent_kafka

        consumer = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap,
                                             "group.id": "bench-check"})
        try:
            topic = consumer.list_topics("bench", timeout=60).topics["bench"]
            held = sum(consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition("bench", p), timeout=60)[1]
                for p in topic.partitions)
        finally:
            consumer.close()
        return None if held == expected else f"the topic holds {held} of {expected}"

    receivers.checks.append(check)


CLIENTS: Dict[str, List[str]] = {
    "jsonl file (baseline)": [],
    "--to relp": ["relp"],
    "--to kafka": ["kafka"],
    "--to relp --to kafka": ["relp", "kafka"],
}


def unavailable_receivers() -> Dict[str, str]:
    """The receivers that cannot run on this machine, each with what to install."""
    from receivers import kafka, rsyslog

    absent = {"relp": rsyslog.missing(["relp"]), "kafka": kafka.missing()}
    return {kind: why for kind, why in absent.items() if why is not None}


def prepare(kinds: List[str], folder: str) -> Receivers:
    receivers = Receivers()
    try:
        for kind in kinds:
            if kind == "relp":
                start_rsyslog(receivers, os.path.join(folder, "rsyslog"))
            else:
                start_kafka(receivers)
    except BaseException:
        receivers.close()
        raise
    return receivers


def command(sim_url: str, folder: str, to: List[str]) -> List[str]:
    argv = [sys.executable, os.path.join(ROOT, "async.py"), f"{sim_url}/shares/v2/async/{SHARE}",
            "--sort", "_id", "--format", "jsonl", "-o", os.path.join(folder, "out.jsonl"),
            "--state", os.path.join(folder, "out.state")]
    for url in to:
        argv += ["--to", url]
    return argv


@dataclass
class Measured:
    run: Run
    cpu: Dict[str, float] = field(default_factory=dict)  # the receivers'


def run_client(launcher: Launcher, sim_url: str, label: str, expected: int,
               workdir: str) -> Measured:
    """One timed run of a client, its receivers started before and checked after (untimed)."""
    folder = tempfile.mkdtemp(prefix="run-", dir=workdir)
    receivers = prepare(CLIENTS[label], folder)
    try:
        run = launcher.run(command(sim_url, folder, receivers.to),
                           os.path.join(folder, "client.stderr"))
        cpu = {"kafka": receivers.cpu["kafka"]()} if "kafka" in receivers.cpu else {}
        if run.error is None:
            with open(os.path.join(folder, "out.jsonl"), "rb") as handle:
                lines = sum(piece.count(b"\n") for piece in iter(lambda: handle.read(1 << 20),
                                                                  b""))
            problems = [f"the file holds {lines} of {expected}"] if lines != expected else []
            problems += [p for p in (check(expected) for check in receivers.checks) if p]
            run.error = "; ".join(problems) or None
        if "rsyslog" in receivers.cpu:  # with what it spent writing out its queue
            cpu["rsyslog"] = receivers.cpu["rsyslog"]()
        return Measured(run, cpu)
    finally:
        receivers.close()
        shutil.rmtree(folder, ignore_errors=True)


# The command with its work on the main thread (cProfile sees that thread only).
PROFILED = """
import cProfile, sys
sys.path.insert(0, "src")
import hubasync.cli.download as download
download.supervise = lambda work, flags, stop: work()
from hubasync.cli.main import main
stats, sys.argv = sys.argv[1], ["hubasync", *sys.argv[2:]]
profiler = cProfile.Profile()
code = profiler.runcall(main)
profiler.dump_stats(stats)
sys.exit(code)
"""


def profile(sim_url: str, label: str, workdir: str) -> None:
    """The client once more under cProfile: the 25 functions with the most time of their own."""
    import pstats

    folder = tempfile.mkdtemp(prefix="profile-", dir=workdir)
    receivers = prepare(CLIENTS[label], folder)
    try:
        argv = command(sim_url, folder, receivers.to)
        stats = os.path.join(workdir, "profile.out")
        done = subprocess.run([argv[0], "-c", PROFILED, stats, *argv[2:]],
                              env=dict(os.environ, APIKEY="demo-key"), capture_output=True)
        if done.returncode != 0:
            note(f"profile: exit {done.returncode}: {done.stderr.decode()[-500:]}")
            return
        note(f"profile of {label}:")
        pstats.Stats(stats, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    finally:
        receivers.close()
        shutil.rmtree(folder, ignore_errors=True)


def table(cells: Dict[str, List[Measured]], events: int) -> str:
    lines = ["| client | median s | min–max s | × baseline | events/s | peak RSS MB | "
             "rsyslog CPU s | mock Kafka CPU s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    base = statistics.median(m.run.seconds for m in cells["jsonl file (baseline)"])
    for label, measured in cells.items():
        seconds = [m.run.seconds for m in measured]
        median = statistics.median(seconds)
        cpu = [[m.cpu[kind] for m in measured if kind in m.cpu] for kind in ("rsyslog", "kafka")]
        lines.append(f"| `{label}` | {median:.2f} | {min(seconds):.2f}–{max(seconds):.2f} | "
                     f"{median / base:.2f} | {events / median:,.0f} | "
                     f"{max(m.run.peak_mb for m in measured):.1f} | "
                     + " | ".join(f"{statistics.median(c):.2f}" if c else "" for c in cpu)
                     + " |")
    return "\n".join(lines)


def goals(cells: Dict[str, List[Measured]]) -> List[str]:
    base = statistics.median(m.run.seconds for m in cells["jsonl file (baseline)"])
    missed = []
    for label, measured in cells.items():
        median = statistics.median(m.run.seconds for m in measured)
        peak = max(m.run.peak_mb for m in measured)
        if label != "jsonl file (baseline)" and median > GOAL * base:
            missed.append(f"`{label}` took {median / base:.2f}x the baseline (goal {GOAL:g}x)")
        if peak >= MEMORY_GOAL_MB:
            missed.append(f"`{label}` peaked at {peak:.1f} MB (goal < {MEMORY_GOAL_MB:g} MB)")
    return missed


def write_doc(section: str) -> None:
    with open(DOC, encoding="utf-8") as handle:
        text = handle.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"delivery_run.py: {DOC} has no markers ({BEGIN} ... {END})")
    text = text[:start + len(BEGIN)] + "\n\n" + section.strip() + "\n\n" + text[end:]
    with open(DOC, "w", encoding="utf-8") as handle:
        handle.write(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="events in the share (default 1,000,000)")
    parser.add_argument("--page-max", type=int, default=100_000,
                        help="the simulator's page size (default 100,000)")
    parser.add_argument("--repeat", type=int, default=5, help="counted runs of each client")
    parser.add_argument("--only", action="append", choices=list(CLIENTS),
                        help="this client besides the baseline (repeatable)")
    parser.add_argument("--profile", choices=list(CLIENTS),
                        help="then run this client once more under cProfile")
    parser.add_argument("--write-doc", action="store_true",
                        help="replace the results section of docs/delivery.md")
    parser.add_argument("--tmpdir", default=None, help="where outputs and receivers live")
    args = parser.parse_args()
    if args.repeat < 1 or args.events < 1:
        parser.error("--repeat and --events: at least 1")
    labels = [label for label in CLIENTS if label == "jsonl file (baseline)"
              or not args.only or label in args.only]
    absent = unavailable_receivers()
    for kind, why in absent.items():
        note(f"leaving out the clients delivering to {kind}: {why}")
    labels = [label for label in labels if not set(CLIENTS[label]) & set(absent)]
    described, measured_at = machine(), revision()
    note(described)
    workdir = tempfile.mkdtemp(prefix="hubasync-delivery-bench-", dir=args.tmpdir)
    started = time.perf_counter()
    sim_args = ("--events", str(args.events), "--page-max", str(args.page_max),
                "--job-latency", "0")
    sim = Sim(sim_args, os.path.join(workdir, "sim.log"))
    launcher = Launcher()
    cells: Dict[str, List[Measured]] = {label: [] for label in labels}
    broken = False
    try:
        for label in labels:  # warm-up: the simulator encodes and caches its pages
            warm = run_client(launcher, sim.url, label, args.events, workdir)
            note(f"  warm-up  {label:24} {warm.run.seconds:7.2f} s {warm.run.peak_mb:7.1f} MB"
                 + (f"  {warm.run.error}" if warm.run.error else ""))
        for number in range(args.repeat):
            for label in labels:
                done = run_client(launcher, sim.url, label, args.events, workdir)
                cells[label].append(done)
                broken = broken or done.run.error is not None
                note(f"  run {number + 1}/{args.repeat}  {label:24} {done.run.seconds:7.2f} s "
                     f"{done.run.peak_mb:7.1f} MB"
                     + "".join(f" {kind} CPU {seconds:.2f} s"
                               for kind, seconds in done.cpu.items())
                     + (f"  {done.run.error}" if done.run.error else ""))
        if args.profile:
            profile(sim.url, args.profile, workdir)
    finally:
        launcher.close()
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    missed = goals(cells)
    section = "\n\n".join([
        f"Machine: {described}",
        f"{measured_at}; `python bench/delivery_run.py --events {args.events} --repeat "
        f"{args.repeat}`: the simulator's share of {args.events:,} events in pages of "
        f"{args.page_max:,}, {args.repeat} counted runs of each client after one warm-up run "
        f"each; the whole bench took {time.perf_counter() - started:.0f} s.",
        table(cells, args.events),
        ("Goals not met:\n\n" + "\n".join(f"- {m}" for m in missed)) if missed else
        f"Every goal is met (at most {GOAL:g}x the baseline's time, peak RSS under "
        f"{MEMORY_GOAL_MB:g} MB).",
    ])
    print(section)
    if args.write_doc:
        write_doc(section)
        note(f"wrote the results into {DOC}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
