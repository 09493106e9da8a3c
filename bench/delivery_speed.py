"""How fast the delivery clients go: N events of about 350 bytes each, delivered over RELP to
a local rsyslog and to librdkafka's mock Kafka cluster, against writing the same events to a
JSON-lines file. Each target runs in a process of its own, so that its peak RSS is its own.

    python bench/delivery_speed.py                   # 1,000,000 events, batches of 100,000
    python bench/delivery_speed.py --events 200000 --only relp

Prints events/s, seconds and the peak RSS of each, and the ratio to the file. rsyslog (with
rsyslog-relp) and confluent-kafka must be installed; a missing one is skipped with a line.
The rsyslog here writes each message to a file with a plain template (``%msg%``), through its
usual in-memory queue.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "src"), os.path.join(ROOT, "tests")]

from hubasync.delivery import Outgoing, open_destination, parse_destination  # noqa: E402


def make_events(count: int) -> List[Outgoing]:
    """``count`` events of about 350 bytes of JSON, with unique keys."""
    pad = b"x" * 200
    return [Outgoing(n, f"bench-{n:010d}", (
        b'{"observation time":"2024-05-01 12:00:%02dZ","feed":"bench","type":"botnet drone",'
        b'"ip":"192.0.2.%d","asn":64500,"cc":"FI","n":%d,"description":"%s"}'
        % (n % 60, n % 250, n, pad))) for n in range(count)]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_file(batch: List[Outgoing], size: int, folder: str) -> Dict[str, Any]:
    path = os.path.join(folder, "events.jsonl")
    started, cpu = time.perf_counter(), time.process_time()
    with open(path, "wb") as handle:
        for start in range(0, len(batch), size):
            handle.write(b"\n".join([item.event for item in batch[start:start + size]]) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def run_relp(batch: List[Outgoing], size: int, folder: str, window: int) -> Dict[str, Any]:
    from receivers.rsyslog import Rsyslog, missing

    if missing(["relp"]):
        return {"skipped": missing(["relp"])}
    with Rsyslog(folder, ["relp"], template="%msg%\n", queue="memory") as receiver:
        target = open_destination(parse_destination(receiver.url("relp"), {"window": window},
                                                    "--to"), "bench")
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(batch), size):
            outcome = target.deliver(batch[start:start + size], time.monotonic() + 600)
            assert outcome.acknowledged == len(batch[start:start + size])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        target.close()
        written = receiver.wait_for_lines(len(batch), timeout=600)
    return {"seconds": seconds, "cpu": cpu, "written_by_rsyslog": written}


def run_kafka(batch: List[Outgoing], size: int) -> Dict[str, Any]:
    from receivers.kafka import MockKafka, missing

    if missing():
        return {"skipped": missing()}
    with MockKafka(brokers=3) as cluster:
        target = open_destination(parse_destination(cluster.url("bench"), {}, "--to"), "bench")
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(batch), size):
            outcome = target.deliver(batch[start:start + size], time.monotonic() + 600)
            assert outcome.acknowledged == len(batch[start:start + size])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        target.close()
    return {"seconds": seconds, "cpu": cpu}


def child(target: str, count: int, size: int, window: int) -> None:
    batch = make_events(count)
    before = peak_rss_mib()
    with tempfile.TemporaryDirectory(prefix="delivery-bench-") as folder:
        if target == "file":
            result = run_file(batch, size, folder)
        elif target == "relp":
            result = run_relp(batch, size, folder, window)
        else:
            result = run_kafka(batch, size)
    result.update(target=target, events=count, peak_rss_mib=round(peak_rss_mib(), 1),
                  rss_before_mib=round(before, 1),
                  bytes=sum(len(item.event) for item in batch))
    print(json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000, help="events per deliver()")
    parser.add_argument("--window", type=int, default=16384, help="the RELP window")
    parser.add_argument("--only", choices=("file", "relp", "kafka"), action="append")
    parser.add_argument("--child", choices=("file", "relp", "kafka"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.events, args.batch, args.window)
        return 0
    results: Dict[str, Dict[str, Any]] = {}
    for target in args.only or ("file", "relp", "kafka"):
        done = subprocess.run([sys.executable, __file__, "--child", target, "--events",
                               str(args.events), "--batch", str(args.batch), "--window",
                               str(args.window)], capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            print(f"{target}: failed: {done.stderr.strip()[-2000:]}")
            continue
        results[target] = json.loads(lines[-1])
    file_seconds = results.get("file", {}).get("seconds")
    print(f"{args.events:,} events of about "
          f"{next(iter(results.values()), {}).get('bytes', 0) / max(1, args.events):.0f} bytes, "
          f"batches of {args.batch:,}")
    for target, result in results.items():
        if "skipped" in result:
            print(f"  {target:6} skipped: {result['skipped']}")
            continue
        rate = result["events"] / result["seconds"]
        ratio = f", {result['seconds'] / file_seconds:.2f}x the file" if file_seconds else ""
        print(f"  {target:6} {rate:12,.0f} events/s  {result['seconds']:7.2f} s  (CPU here "
              f"{result['cpu']:.2f} s)  peak RSS "
              f"{result['peak_rss_mib']:.0f} MiB (events alone {result['rss_before_mib']:.0f} "
              f"MiB){ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
