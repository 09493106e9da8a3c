"""What the receivers of a delivery test got, read back, and checked against the share's record.

    record = Record.of(tmp_path, "s1")                # the share's files, oldest first
    got = from_rsyslog(receiver) + ...                # [Received(key, event, partition)]
    figures = check(got, {record.prefix: record.events}, "relp")
    assert not figures.problems, figures.summary()

The checks: every key names an event of the record (``KEYPREFIX-SEQ``, KEYPREFIX the first 16
hex digits of the run's fingerprint, in its state) and carries that very event; every event of
the record arrived at least once (losses: 0); dropping the duplicates by key leaves the record,
in order (for Kafka, in order within each partition, which orders only its own).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from processes import PATIENCE
from receivers.rsyslog import Rsyslog, sd_key

try:
    import confluent_kafka
except ImportError:  # the Kafka parts of the tests skip (tests/receivers/kafka.py says why)
    confluent_kafka = None

ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
ENV["APIKEY"] = "demo-key"


@dataclass(frozen=True)
class Received:
    """One message a receiver got: its key, the event it carried, and (Kafka) its partition."""

    key: str
    event: Dict[str, Any]
    partition: int = 0


def from_rsyslog(receiver: Rsyslog, share: Optional[str] = None) -> List[Received]:
    """What rsyslog wrote, in order (only the share's, by the syslog MSGID, when given)."""
    return [Received(sd_key(m["sd"]), json.loads(m["msg"])) for m in receiver.messages()
            if share is None or m["msgid"] == share]


def written_out(receiver: Rsyslog, total: int, quiet: float = PATIENCE) -> List[Received]:
    """What rsyslog wrote once it holds ``total`` distinct keys, or once it wrote nothing more
    for ``quiet`` seconds (its disk queue written out: what is missing is lost). A disk queue
    synced per message can pause for seconds while other work fills the disk's journal, so the
    wait is long; it is spent only when something is missing."""
    last, since = -1, time.monotonic()
    while True:
        got = from_rsyslog(receiver)
        if len({m.key for m in got}) >= total:
            return got
        if len(got) != last:
            last, since = len(got), time.monotonic()
        elif time.monotonic() - since > quiet:
            return got
        time.sleep(0.1)


def from_hec(hec: Any) -> List[Received]:
    """What the simulated HEC indexed, in order."""
    return [Received(e["fields"]["hubasync_key"], e["event"]) for e in hec.events()]


def from_kafka(bootstrap: str, topic: str) -> List[Received]:
    """Every message of ``topic``, each partition read from its start to its end."""
    assert confluent_kafka is not None
    quiet = logging.getLogger(f"check-kafka-{id(bootstrap)}")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}",
        "enable.auto.commit": False, "logger": quiet})
    try:
        metadata = consumer.list_topics(topic, timeout=PATIENCE)
        if topic not in metadata.topics:
            return []
        partitions = list(metadata.topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(confluent_kafka.TopicPartition(topic, p),
                                                  timeout=PATIENCE)[1] for p in partitions}
        reached = {p: 0 for p in partitions}
        consumer.assign([confluent_kafka.TopicPartition(topic, p,
                                                        confluent_kafka.OFFSET_BEGINNING)
                         for p in partitions if ends[p] > 0])
        found: List[Received] = []
        deadline = time.monotonic() + PATIENCE
        while any(reached[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {reached} of {ends} messages of {topic}")
            for message in consumer.consume(10000, 0.5):
                if message.error() is None:
                    found.append(Received(message.key().decode(), json.loads(message.value()),
                                          message.partition()))
                    reached[message.partition()] = message.offset() + 1
        return found
    finally:
        consumer.close()


@dataclass
class Record:
    """A share's local record: its events, in the order of its files, and its key prefix."""

    prefix: str
    events: List[Dict[str, Any]]

    @classmethod
    def of(cls, folder: Path, name: str, state: Optional[Path] = None,
           files: Optional[Sequence[Path]] = None) -> Record:
        """The share ``name`` written in ``folder`` (``NAME.jsonl``, with ``NAME.state``), or
        ``files`` in that order."""
        state = state or folder / f"{name}.state"
        prefix = json.loads(state.read_text())["fingerprint"][:16]
        events: List[Dict[str, Any]] = []
        for path in files or [folder / f"{name}.jsonl"]:
            events += [json.loads(line) for line in path.read_text().splitlines()]
        return cls(prefix, events)


@dataclass
class Figures:
    """What one destination received, against the records it was given."""

    destination: str
    events: int = 0  # in the records
    received: int = 0
    duplicates: int = 0  # messages whose key came before
    losses: int = 0  # events of the records never received
    problems: List[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.destination}: {self.events} events, {self.received} received, "
                f"{self.duplicates} duplicates by key, {self.losses} lost")
        return text + ("; " + "; ".join(self.problems[:5]) if self.problems else "")


def check(got: Sequence[Received], records: Mapping[str, List[Dict[str, Any]]],
          destination: str) -> Figures:
    """The figures of ``got`` against ``records`` (key prefix: the record's events), and every
    problem found (see the module's docstring)."""
    figures = Figures(destination, events=sum(len(r) for r in records.values()),
                      received=len(got))
    seen: Dict[Tuple[str, int], None] = {}
    last: Dict[Tuple[str, int], int] = {}  # (prefix, partition): the last new sequence number
    for message in got:
        prefix, _, number = message.key.rpartition("-")
        record = records.get(prefix)
        if record is None or not number.isdigit() or int(number) >= len(record):
            figures.problems.append(f"key {message.key} names no event of the records")
            continue
        seq = int(number)
        if message.event != record[seq]:
            figures.problems.append(f"key {message.key} carries another event than the "
                                    f"record's: {message.event.get('uuid')} instead of "
                                    f"{record[seq].get('uuid')}")
        if (prefix, seq) in seen:
            figures.duplicates += 1
            continue
        seen[(prefix, seq)] = None
        before = last.get((prefix, message.partition), -1)
        if seq < before:
            figures.problems.append(f"key {message.key} came new after {prefix}-{before}: "
                                    "out of order")
        last[(prefix, message.partition)] = seq
    figures.losses = figures.events - len(seen)
    if figures.losses:
        missing = [f"{prefix}-{seq}" for prefix, record in records.items()
                   for seq in range(len(record)) if (prefix, seq) not in seen]
        figures.problems.append(f"{figures.losses} events never arrived: {missing[:5]}...")
    return figures


def sync_config(folder: Path, shares: Mapping[str, str], destinations: Mapping[str, str],
                *, deliver: Sequence[str], interval: float = 0.2, extra: str = "",
                share_extra: str = "") -> Path:
    """A sync config in ``folder``: ``shares`` (name: URL) each delivering to ``deliver``,
    ``destinations`` (name: the TOML lines of its table after its header)."""
    lines = [f'directory = "{folder}"', 'apikey_env = "APIKEY"', f"interval = {interval}", extra]
    for name, table in destinations.items():
        lines += [f"[destinations.{name}]", table]
    for name, url in shares.items():
        lines += [f"[shares.{name}]", f'url = "{url}"',
                  f"deliver = {json.dumps(list(deliver))}", share_extra]
    path = folder / "hubasync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def positions(state: Path) -> Tuple[int, Dict[str, Dict[str, Any]]]:
    """The events a state's record holds, and each destination's position ({} before the
    first save, or while the file is being replaced)."""
    try:
        saved = json.loads(state.read_text())
    except (FileNotFoundError, ValueError):
        return 0, {}
    return saved.get("record_events", 0), saved.get("deliveries", {}).get("positions", {})


def show(request: Any, line: str) -> None:
    """Print ``line`` on the terminal whether pytest captures output or not (the figures of a
    test: events, duplicates, losses)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_line(line)
