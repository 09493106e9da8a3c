"""Deliveries over a fake destination: positions moved over the acknowledged prefix only, dead
letters, backoff and giving up, failures reported, and a moved file read to its end."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pytest

from hubasync.delivery.records import Outcome, Outgoing, Rejection
from hubasync.errors import DeliveryError, HubUnavailable, UsageError
from hubasync.run.delivering import Deliveries, RecordEnd, Report

from .memory_hub import FakeClock


class FakeDestination:
    """Acknowledges what ``plan`` says, batch after batch: a number (the prefix acknowledged,
    then a transient failure), an exception to raise, or None (everything)."""

    name = "fake"

    def __init__(self, plan: Sequence[Any] = ()) -> None:
        self.plan = list(plan)
        self.received: List[Outgoing] = []
        self.rejecting: set[int] = set()  # sequence numbers rejected for good

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        step = self.plan.pop(0) if self.plan else None
        if isinstance(step, BaseException):
            raise step
        done = len(batch) if step is None else min(step, len(batch))
        self.received.extend(batch[:done])
        rejected = [Rejection(n, "too large") for n, e in enumerate(batch[:done])
                    if e.seq in self.rejecting]
        outcome = Outcome(acknowledged=done, rejected=rejected)
        if done < len(batch):
            raise DeliveryError("receiver went away", transient=True, outcome=outcome)
        return outcome

    def close(self) -> None:
        pass


class Record:
    """A JSON-lines record on disk, as the run keeps it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "share.jsonl"
        self.path.write_bytes(b"")
        self.written = 0

    def add(self, count: int) -> None:
        with open(self.path, "ab") as handle:
            for _ in range(count):
                handle.write(json.dumps({"n": self.written}).encode() + b"\n")
                self.written += 1

    def end(self) -> RecordEnd:
        info = os.stat(self.path)
        return RecordEnd(identity=(info.st_dev, info.st_ino), offset=info.st_size,
                         written=self.written, path=str(self.path))


def deliveries(record: Record, destination: FakeDestination, reports: List[Report],
               saved: List[Dict[str, Any]], *, retries: int = 3,
               clock: Optional[FakeClock] = None) -> Deliveries:
    made = Deliveries([("fake", destination, str(record.path) + ".fake.dead.jsonl")],
                      key_prefix="abc", record=record.end, retries=retries,
                      save=lambda: saved.append(made.saved()), report=reports.append,
                      clock=clock or FakeClock())
    made.restore({}, record.end())
    return made


def drain(made: Deliveries, clock: Optional[FakeClock] = None) -> None:
    """Deliver until every destination caught up, sleeping through the backoffs."""
    for wait in made.catch_up():
        if wait.until is not None:
            assert clock is not None
            clock.sleep(wait.until - clock.now())


def numbers(events: Sequence[Outgoing]) -> List[int]:
    return [json.loads(e.event)["n"] for e in events]


def test_every_event_once_with_its_key_and_the_position_saved(tmp_path: Path) -> None:
    record, destination, reports, saved = Record(tmp_path), FakeDestination(), [], []
    made = deliveries(record, destination, reports, saved)
    record.add(7)
    drain(made)
    assert numbers(destination.received) == list(range(7))
    assert [e.key for e in destination.received][:2] == ["abc-0", "abc-1"]
    position = saved[-1]["positions"]["fake"]
    assert position["seq"] == 7 and position["offset"] == os.path.getsize(record.path)
    assert reports[-1].acknowledged == 7 and reports[-1].lag == 0


def test_only_the_acknowledged_prefix_moves_the_position(tmp_path: Path) -> None:
    clock = FakeClock()
    record, destination, reports, saved = Record(tmp_path), FakeDestination([3]), [], []
    made = deliveries(record, destination, reports, saved, clock=clock)
    record.add(10)
    assert list(made.catch_up(wait=False))  # a batch, then only a destination backing off
    assert saved[-1]["positions"]["fake"]["seq"] == 3  # the three acknowledged, no more
    assert reports[-1].retried and reports[-1].error == "receiver went away"
    assert made.lag() == 7
    drain(made, clock)
    assert numbers(destination.received) == list(range(10))  # the rest sent again, once


def test_events_rejected_for_good_go_to_the_dead_letters(tmp_path: Path) -> None:
    record, destination, reports, saved = Record(tmp_path), FakeDestination(), [], []
    destination.rejecting = {2, 4}
    made = deliveries(record, destination, reports, saved)
    record.add(6)
    drain(made)
    dead = [json.loads(line) for line in
            Path(str(record.path) + ".fake.dead.jsonl").read_text().splitlines()]
    assert [(d["key"], d["event"]["n"], d["reason"]) for d in dead] == [
        ("abc-2", 2, "too large"), ("abc-4", 4, "too large")]
    position = saved[-1]["positions"]["fake"]
    assert (position["seq"], position["acknowledged"], position["dead"]) == (6, 4, 2)


def test_a_destination_failing_past_its_retries_ends_the_run(tmp_path: Path) -> None:
    clock = FakeClock()
    failing = [DeliveryError("refused", transient=True, outcome=Outcome())] * 5
    record, destination, reports, saved = Record(tmp_path), FakeDestination(failing), [], []
    made = deliveries(record, destination, reports, saved, retries=2, clock=clock)
    record.add(3)
    with pytest.raises(HubUnavailable, match="gave up after 3 failed deliveries"):
        drain(made, clock)
    assert len(destination.plan) == 2  # tried three times, no more
    assert made.lag() == 3  # nothing skipped: the position stays for when it is back


def test_a_refused_token_is_reported_with_the_lag(tmp_path: Path) -> None:
    record, reports, saved = Record(tmp_path), [], []
    destination = FakeDestination([UsageError("HTTP 403: Invalid token")])
    made = deliveries(record, destination, reports, saved)
    record.add(15)
    with pytest.raises(UsageError):
        drain(made)
    assert reports[-1].error == "HTTP 403: Invalid token" and reports[-1].lag == 15


def test_held_back_at_the_bound(tmp_path: Path) -> None:
    record, destination, reports, saved = Record(tmp_path), FakeDestination(), [], []
    made = deliveries(record, destination, reports, saved)
    made.max_lag = 5
    record.add(4)
    assert not made.held_back()
    record.add(1)
    assert made.held_back()
    for _ in made.catch_up(below=made.max_lag):
        pass
    assert not made.held_back() and made.lag() < made.max_lag


def test_a_moved_file_is_read_to_its_end_then_the_new_one(tmp_path: Path) -> None:
    clock = FakeClock()
    outage = [DeliveryError("down", transient=True, outcome=Outcome())]
    record, destination, reports, saved = Record(tmp_path), FakeDestination(outage), [], []
    made = deliveries(record, destination, reports, saved, clock=clock)
    record.add(4)
    for _ in made.catch_up(wait=False):  # the receiver is down: nothing delivered
        pass
    assert made.lag() == 4
    old = record.end()
    assert old.identity is not None
    reader = os.open(record.path, os.O_RDONLY)
    os.rename(record.path, str(record.path) + ".1")  # logrotate
    made.rotated(old.identity, old.offset, reader)
    record.path.write_bytes(b"")
    record.add(3)
    drain(made, clock)
    assert numbers(destination.received) == list(range(7))
    assert saved[-1]["segments"] == []  # the moved file is no longer needed


def test_a_rotation_told_twice_moves_the_positions_once_even_across_a_restart(
        tmp_path: Path) -> None:
    record, destination, reports, saved = Record(tmp_path), FakeDestination(), [], []
    made = deliveries(record, destination, reports, saved)
    record.add(4)
    drain(made)  # all four delivered: the position at the end of the file
    old = record.end()
    assert old.identity is not None
    os.rename(record.path, str(record.path) + ".1")
    made.rotated(old.identity, old.offset)
    made.rotated(old.identity, old.offset)  # the run's new file failed; it rotates again
    kept = made.saved()
    record.path.write_bytes(b"")  # the new file
    again = deliveries(record, FakeDestination(), [], [])
    again.restore(kept, old)
    again.rotated(old.identity, old.offset)  # after a crash, from the state
    for told in (made, again):
        assert told.saved()["positions"]["fake"]["offset"] == 0
        assert told.saved()["segments"] == []
    made.opened_next()
    assert "rotated_from" not in made.saved()
