"""A share's events delivered to its destinations, each moved only over what its receiver
acknowledged.

The share's file (JSON lines) is written first and stays the local record. Every event in it
has a sequence number (its rank in the record since the share began, from 0) and a stable key
made from it (``KEYPREFIX-SEQ``): the same key on every attempt and after any restart, so that
a receiver, or a search, can drop the duplicates that at-least-once delivery may make after a
crash. Each destination has its own position in the record (the sequence number and the byte
offset of the next event it must deliver, and the file it is in), saved in the run's state at
most every :data:`SAVE_EVERY` seconds while it delivers, and whenever delivering stops: it
reads the committed events after it, delivers a batch, and moves over the prefix its receiver
acknowledged, never further. An event the receiver rejects
for good (too large, invalid for it) goes to a dead-letter file beside the output
(``NAME.DEST.dead.jsonl``), is counted, and is passed. A destination that fails is tried again
after a backoff of its own (its retries counted); the others go on.

A destination that falls :attr:`Deliveries.max_lag` events behind holds back fetching from the
hub (the run asks for no more pages until it catches up): events are never dropped. A
destination lagging across a rotation reads on in the moved file, kept open (after a restart
found again beside the path by its device and inode, as the run finds its own file).

Giving up: the command and ``sync --once`` (``patient=False``) end the run when a destination
failed more than ``retries`` times in a row, after the other destinations had their batch. A
share that ``hubasync sync`` follows (``patient=True``) never gives a destination up: it is
tried again after its backoff (at most 30 s), fetching held back at ``max_lag``, and a pass ends
without waiting for a destination that is backing off (it is tried again at the next pass).

Delivering is done a batch per destination at a time, as steps (:meth:`Deliveries.catch_up`
yields a :class:`~hubasync.core.clock.Wait` between rounds), so that the run's driver can stop
it or, in the service, give the worker to another share.

Who may touch what: a run's deliveries are driven by the one thread driving the run, but for
:meth:`Deliveries.abort`, which a stop calls from its own thread: it sets a flag and breaks off
each destination's blocking calls (``Destination.abort``, safe from any thread).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Tuple

from hubasync.core.bounds import MAX_LAG
from hubasync.core.clock import Clock, SystemClock, Wait
from hubasync.core.retry import RetryPolicy
from hubasync.delivery import Destination, Outgoing
from hubasync.errors import DeliveryError, HubasyncError, HubUnavailable, OutputError
from hubasync.files.output import find_by_identity

Identity = Tuple[int, int]
BATCH_EVENTS = 5_000  # the most events in a batch
# The most bytes read for a batch (an event larger is read whole): 1 MiB, about 3,000 events
# of 350 bytes. 4 MiB was no quicker (bench/delivery_run.py) and cost 6-9 MB more at the peak.
BATCH_BYTES = 1 << 20
# A batch is sized to take about BATCH_SECONDS at its receiver's pace: it starts at
# FIRST_BATCH_EVENTS events, doubles after a batch quicker than half of it, halves after one
# slower. What a crash repeats (the batch in flight, and SAVE_EVERY of deliveries) and what a
# stop waits for stay that short with a slow receiver (rsyslog syncing its disk queue: 60-1,000
# events/s).
FIRST_BATCH_EVENTS = 20
BATCH_SECONDS = 1.0
# Positions moved by batches are saved (the whole state: two fsyncs) at most this often while
# delivering goes on, and whenever it stops: a crash repeats at most that much more.
SAVE_EVERY = 0.25
DELIVERY_TIMEOUT = 120.0  # seconds a batch may take, end to end, before it counts as failed


@dataclass
class Position:
    """Where one destination stands in the record: the next event it must deliver, its
    number, and where it is: at ``offset`` in the file ``identity``, a moved one still read,
    or (None) in the record's current file."""

    seq: int = 0
    offset: int = 0
    identity: Optional[Identity] = None
    acknowledged: int = 0  # events its receiver acknowledged, all runs together
    dead: int = 0  # events it rejected for good, in the dead-letter file
    retries: int = 0  # failed batches, tried again
    last_ack: Optional[float] = None  # Unix time of its last acknowledgement

    def saved(self) -> Dict[str, Any]:
        return {"seq": self.seq, "offset": self.offset,
                "identity": None if self.identity is None else list(self.identity),
                "acknowledged": self.acknowledged, "dead": self.dead, "retries": self.retries,
                "last_ack": self.last_ack}


@dataclass
class Segment:
    """A file of the record that a lagging destination still reads: moved away, complete."""

    identity: Identity
    end: int  # its size: where its events end


@dataclass
class Report:
    """What a delivery did, for the metrics, the status and the progress line."""

    destination: str
    sent: int = 0
    acknowledged: int = 0
    dead: int = 0
    retried: bool = False
    error: Optional[str] = None
    lag: int = 0
    last_ack: Optional[float] = None


@dataclass
class _Target:
    name: str
    destination: Destination
    dead_path: str
    position: Position
    batch_events: int = FIRST_BATCH_EVENTS
    failures: int = 0
    due: float = 0.0  # monotonic time it may be tried again
    last_error: Optional[str] = None


@dataclass
class RecordEnd:
    """The committed end of the record: its current file (its identity, where it is) and where
    its events end in it, and the events the record holds in all."""

    identity: Optional[Identity]
    offset: int
    written: int
    path: str


class Deliveries:
    """The destinations of one run (see the module's docstring)."""

    def __init__(self, destinations: Sequence[Tuple[str, Destination, str]], *, key_prefix: str,
                 record: Callable[[], RecordEnd], save: Callable[[], None], retries: int,
                 max_lag: int = int(MAX_LAG.default), clock: Optional[Clock] = None,
                 report: Callable[[Report], None] = lambda report: None,
                 patient: bool = False) -> None:
        self.key_prefix = key_prefix
        self.max_lag = max_lag
        self.patient = patient
        self._record = record
        self._save = save
        self.clock: Clock = clock or SystemClock()
        self._policy = RetryPolicy(retries=retries)
        self._report = report
        self._targets = [_Target(name, destination, dead, Position())
                         for name, destination, dead in destinations]
        self._segments: List[Segment] = []
        self._files: Dict[Identity, int] = {}  # descriptors of moved files still read
        self._current_fd: Optional[Tuple[Identity, int]] = None
        self._unsaved = False  # a position moved since the state was last saved
        self._saved_at = self.clock.now()
        # The file last rotated away from, and its end, until the run opens the next one: a
        # rotation the run makes again (its new file failed, or a crash came before the state
        # named it) must not move the positions twice.
        self._rotated_from: Optional[Tuple[Identity, int]] = None
        self._aborted = False  # a stop broke the destinations off (set by another thread)

    # -- the state --------------------------------------------------------------------------

    def saved(self) -> Dict[str, Any]:
        """What the state keeps: each destination's position, and the moved files they read
        (the run's every save calls it: the positions are saved from then on)."""
        self._unsaved, self._saved_at = False, self.clock.now()
        saved: Dict[str, Any] = {
            "positions": {t.name: t.position.saved() for t in self._targets},
            "segments": [{"identity": list(s.identity), "end": s.end} for s in self._segments]}
        if self._rotated_from is not None:
            identity, end = self._rotated_from
            saved["rotated_from"] = {"identity": list(identity), "end": end}
        return saved

    def restore(self, saved: Dict[str, Any], end: RecordEnd) -> None:
        """Go on from a state's record of the deliveries (checked by the state's reader). A
        destination the state does not know starts at the end of the record: it gets the
        events written from now on."""
        positions = saved.get("positions", {})
        for target in self._targets:
            known = positions.get(target.name)
            if known is None:
                target.position = Position(seq=end.written, offset=end.offset)
                continue
            identity = known.get("identity")
            target.position = Position(
                seq=known["seq"], offset=known["offset"],
                identity=None if identity is None else (identity[0], identity[1]),
                acknowledged=known.get("acknowledged", 0), dead=known.get("dead", 0),
                retries=known.get("retries", 0), last_ack=known.get("last_ack"))
        self._segments = [Segment((s["identity"][0], s["identity"][1]), s["end"])
                          for s in saved.get("segments", [])]
        rotated = saved.get("rotated_from")
        self._rotated_from = None if rotated is None else (
            (rotated["identity"][0], rotated["identity"][1]), rotated["end"])

    # -- the record's files -----------------------------------------------------------------

    def rotated(self, old: Identity, end: int, fd: Optional[int] = None) -> None:
        """The run completed its current file, ``old`` (``end``: where its events end; ``fd``:
        a descriptor to read it, wherever it went, now the deliveries' to close), and starts a
        new one: a destination done with it moves to the new file's start, one still reading it
        goes on in it (held open: logrotate may compress and remove it meanwhile). The same
        rotation told again before :meth:`opened_next` changes nothing."""
        if self._rotated_from == (old, end):
            if fd is not None:
                os.close(fd)
            return
        self._rotated_from = (old, end)
        self._unsaved = True
        needed = False
        for target in self._targets:
            position = target.position
            if position.identity is not None:
                continue
            if position.offset >= end:
                position.offset = 0
            else:
                position.identity, needed = old, True
        if needed and all(s.identity != old for s in self._segments):
            self._segments.append(Segment(old, end))
            if fd is not None:
                self._files[old] = fd
                fd = None
            self._open(old, None)
        if fd is not None:
            os.close(fd)

    def cut(self) -> Dict[str, int]:
        """The current file was cut in place (``copytruncate``): its bytes are gone, and it is
        written anew from its start. Each destination reading it goes on there; what it had
        not delivered yet is lost for it: returned, by destination."""
        written = self._record().written
        lost: Dict[str, int] = {}
        for target in self._targets:
            position = target.position
            if position.identity is None:
                lost[target.name] = written - position.seq
                position.seq, position.offset = written, 0
        self._unsaved = True
        return lost

    def opened_next(self) -> None:
        """The run opened the file after the one it rotated away from: a later rotation is
        another one."""
        self._rotated_from = None

    def _open(self, identity: Identity, path: Optional[str]) -> int:
        fd = self._files.get(identity)
        if fd is not None:
            return fd
        found = path if path is not None else self._find(identity)
        if found is None:
            raise OutputError(f"the record's file of device {identity[0]} inode {identity[1]}, "
                              "moved away with events not yet delivered, is no longer beside "
                              "the output: keep rotated files until they are delivered")
        fd = os.open(found, os.O_RDONLY)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != identity:
            os.close(fd)
            raise OutputError(f"{found} changed while it was opened to deliver its events")
        self._files[identity] = fd
        return fd

    def _find(self, identity: Identity) -> Optional[str]:
        return find_by_identity(os.path.dirname(os.path.abspath(self._record().path)), identity)

    def abort(self) -> None:
        """The run stops (called from the stopping thread): a batch blocked on its receiver
        fails at once, and what was not acknowledged is delivered by the next run."""
        self._aborted = True
        for target in self._targets:
            target.destination.abort()

    def close(self) -> None:
        for target in self._targets:
            target.destination.close()
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
        if self._current_fd is not None:
            os.close(self._current_fd[1])
            self._current_fd = None

    # -- how far behind -----------------------------------------------------------------------

    def lags(self) -> Dict[str, int]:
        """Events each destination has still to deliver, by its name."""
        written = self._record().written
        return {t.name: written - t.position.seq for t in self._targets}

    def lag(self) -> int:
        """Events the most lagging destination has still to deliver."""
        return max(self.lags().values(), default=0)

    def held_back(self) -> bool:
        """Whether fetching from the hub waits for a destination to catch up."""
        return self.lag() >= self.max_lag

    # -- delivering ---------------------------------------------------------------------------

    def catch_up(self, *, below: int = 1, wait: bool = True) -> Generator[Wait, None, None]:
        """Deliver until every destination is fewer than ``below`` events behind: a batch to
        each destination that is behind and due at a time, a ``Wait(None)`` after each round
        (the driver may stop there, or give the worker to another share). ``wait``: wait
        through the backoffs of failing destinations; else return once every destination still
        behind is backing off. Returns too when a round moves no destination (nothing readable
        yet: a file cut under the run, noticed at its next page)."""
        try:
            while True:
                record = self._record()
                behind = [t for t in self._targets if t.position.seq < record.written]
                if all(record.written - t.position.seq < below for t in behind):
                    return
                now = self.clock.now()
                due = [t for t in behind if t.due <= now]
                if due:
                    if not self._round(due, record):
                        return
                    if self._unsaved and self.clock.now() - self._saved_at >= SAVE_EVERY:
                        self._save()
                    yield Wait(None, "delivery")
                elif wait:
                    self.flush()
                    yield Wait(min(t.due for t in behind), "delivery")
                else:
                    return
        finally:
            self.flush()

    def flush(self) -> None:
        """Save the positions moved since the state was last saved."""
        if self._unsaved:
            self._save()

    def _round(self, targets: Sequence[_Target], record: RecordEnd) -> bool:
        """A batch to each of ``targets``; whether any moved or failed. A failure that ends the
        run is raised once every other target had its batch."""
        moved = False
        ending: Optional[HubasyncError] = None
        for target in targets:
            try:
                moved = self._batch(target, record) or moved
            except HubasyncError as error:
                moved, ending = True, ending or error
        if ending is not None:
            raise ending
        return moved

    def _batch(self, target: _Target, record: RecordEnd) -> bool:
        """One batch to ``target``; whether its position moved or it failed."""
        position = target.position
        lines = self._read(position, record, target.batch_events)
        if not lines:
            return self._move_to_next_file(target, record)
        first, prefix = position.seq, self.key_prefix
        batch = [Outgoing(seq, f"{prefix}-{seq}", line)
                 for seq, line in enumerate(lines, first)]
        report = Report(target.name, sent=len(batch))
        started = self.clock.now()
        try:
            outcome = target.destination.deliver(batch, started + DELIVERY_TIMEOUT)
            failure: Optional[HubasyncError] = None
            self._size_next_batch(target, len(batch), self.clock.now() - started)
        except DeliveryError as error:
            outcome, failure = error.outcome, error
        except HubasyncError as error:  # a receiver that refuses the token: not for retrying
            outcome, failure = None, error
        done = 0 if outcome is None else outcome.acknowledged
        rejected = [] if outcome is None else outcome.rejected_within_prefix()
        if rejected:
            self._dead_letters(target, batch, rejected)
        if done:
            position.offset += sum(map(len, lines[:done])) + done  # each line and its \n
            position.seq += done
            position.acknowledged += done - len(rejected)
            position.dead += len(rejected)
            position.last_ack = time.time()
            self._unsaved = True
        report.acknowledged, report.dead = done - len(rejected), len(rejected)
        report.lag, report.last_ack = record.written - position.seq, position.last_ack
        if failure is not None and self._aborted:
            return True  # a stop broke the batch off: no fault of the receiver's, nothing to say
        if failure is not None:
            self._failed(target, failure, report)
        else:
            target.failures, target.last_error = 0, None
        self._report(report)
        return True

    @staticmethod
    def _size_next_batch(target: _Target, size: int, seconds: float) -> None:
        if seconds > BATCH_SECONDS:
            target.batch_events = max(FIRST_BATCH_EVENTS, size // 2)
        elif seconds < BATCH_SECONDS / 2 and size >= target.batch_events:
            target.batch_events = min(BATCH_EVENTS, size * 2)

    def _failed(self, target: _Target, error: HubasyncError, report: Report) -> None:
        report.error = target.last_error = str(error)
        if not error.transient:
            self._report(report)
            raise error
        target.failures += 1
        target.position.retries += 1
        report.retried = True
        if not self.patient and target.failures > self._policy.retries:
            self._report(report)
            raise HubUnavailable(f"{target.name}: gave up after {target.failures} failed "
                                 f"deliveries ({error}); its events stay in the record, and its "
                                 "position in the state: they are delivered when it is back")
        target.due = self.clock.now() + self._policy.delay(target.failures, error.retry_after)

    def _read(self, position: Position, record: RecordEnd, events: int) -> List[bytes]:
        """The next events after ``position``, whole lines only (without their line
        breaks), committed only, at most ``events`` of them and :data:`BATCH_BYTES` (an event
        larger is read whole)."""
        if position.identity is None:
            end = record.offset
            found = self._current(record)
            if found is None:
                return []
            fd = found
        else:
            segment = next(s for s in self._segments if s.identity == position.identity)
            end = segment.end
            fd = self._open(position.identity, None)
        if position.offset >= end:
            return []
        data = os.pread(fd, min(end - position.offset, BATCH_BYTES), position.offset)
        lines = data.split(b"\n", events)[:-1]  # the last piece: a line cut short, or the rest
        if not lines and data:  # one event larger than a batch's bytes: read it whole
            stop = data.find(b"\n")
            more = data
            while stop < 0 and position.offset + len(more) < end:
                more += os.pread(fd, BATCH_BYTES, position.offset + len(more))
                stop = more.find(b"\n")
            if stop >= 0:
                lines = [more[:stop]]
        return lines

    def _move_to_next_file(self, target: _Target, record: RecordEnd) -> bool:
        """At the end of a moved file: on to the next file of the record (True); False when
        at the end of the current file (nothing more to read yet)."""
        position = target.position
        if position.identity is None:
            return False
        index = next(n for n, s in enumerate(self._segments) if s.identity == position.identity)
        following = self._segments[index + 1] if index + 1 < len(self._segments) else None
        position.identity = following.identity if following is not None else None
        position.offset = 0
        self._forget_unread_segments()
        self._save()
        return True

    def _current(self, record: RecordEnd) -> Optional[int]:
        """A descriptor of the record's current file, read only: the file the run writes,
        wherever it is now (moved away, the run has not noticed it yet)."""
        identity = record.identity
        if identity is None:
            return None
        if self._current_fd is not None and self._current_fd[0] == identity:
            return self._current_fd[1]
        if self._current_fd is not None:  # the moved files' descriptors are others
            os.close(self._current_fd[1])
        self._current_fd = None
        path: Optional[str] = record.path
        try:
            info = os.stat(record.path)
            if (info.st_dev, info.st_ino) != identity:
                path = self._find(identity)
        except OSError:
            path = self._find(identity)
        if path is None:
            return None
        fd = os.open(path, os.O_RDONLY)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != identity:
            os.close(fd)
            return None
        self._current_fd = (identity, fd)
        return fd

    def _forget_unread_segments(self) -> None:
        needed = {t.position.identity for t in self._targets}
        for segment in list(self._segments):
            if segment.identity not in needed:
                self._segments.remove(segment)
                fd = self._files.pop(segment.identity, None)
                if fd is not None:
                    os.close(fd)

    def _dead_letters(self, target: _Target, batch: Sequence[Outgoing],
                      rejected: Sequence[Any]) -> None:
        """Append the events rejected for good to the destination's dead-letter file (one JSON
        object a line: its key, the destination, why, and the event; ``event_text`` instead,
        the event as text, for one that is not valid JSON)."""
        lines = []
        for rejection in rejected:
            event = batch[rejection.position]
            line: Dict[str, Any] = {"key": event.key, "destination": target.name,
                                    "reason": rejection.reason}
            try:
                line["event"] = json.loads(event.event)
            except ValueError:  # not JSON (the hub's bytes, checked by their structure only)
                line["event_text"] = event.event.decode("utf-8", "replace")
            lines.append(json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass")
                         + b"\n")
        try:
            fd = os.open(target.dead_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, b"".join(lines))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            raise OutputError(f"cannot write the dead letters of {target.name} to "
                              f"{target.dead_path}: {error.strerror or error}") from None
