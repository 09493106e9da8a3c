"""One resumable run: a share's events into one output, with the state that continues it.

:class:`ResumableRun` owns the three things whose agreement makes "exactly once" true: the
cursor (where the run stands), the output (bytes written a page at a time, through a format
writer) and the state file (the cursor, the output's committed size and what recognises it,
saved atomically after each page). The command line, the library's ``Client.download`` and
every share of ``hubasync sync`` use it; the run loop (:func:`hubasync.run.pipeline.fetch_pages`)
writes its pages into it, as into any :class:`~hubasync.run.pipeline.PageTarget`.

Its life::

    run = ResumableRun(settings)
    run.claim()        # locks; reads and checks the state and the output: before any request
    if run.open():     # the output opened where the state left it (False: nothing left to do)
        drive(run.pages(session, attempts=...), clock)    # pages committed one by one
        run.finish()   # the document completed (a JSON array closed, a .part renamed)
    run.release()      # or, stopped or failed: run.stop_early(), then release()

At every instant the state describes a prefix of the output: the state is first saved before
a byte is written, then after each page is written and flushed (synced, with a state). A run
killed anywhere continues, when run again, right after its last committed page, cutting what
a killed page left past it.

A service's share (``settings.in_place``) writes its output in place and grows it pass after
pass; between its turns it is *suspended* (:meth:`suspend`: the document closed, its file let
go) and reopened at the next page. Its file may be moved away (logrotate), or cut
(``copytruncate``): every page first checks that the file at the path is still the one being
written; if not, the old file is completed where it went and a new one started at the path, the
state saved in between. Killed while its file was being moved, the
run finds the old file again beside the path by its identity (device and inode, in the state),
completes it, and starts the new one: every event is in exactly one file, every file valid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from calendar import timegm
from contextlib import ExitStack, contextmanager
from typing import Any, BinaryIO, Callable, Dict, Generator, Iterator, Optional, Tuple

from hubasync.core.cursor import Cursor
from hubasync.core.params import query_url
from hubasync.core.retry import Attempts
from hubasync.core.stalls import StallDetector
from hubasync.delivery import open_destination
from hubasync.errors import ClaimError, OutputError, UsageError
from hubasync.events.formats import FormatWriter, format_writer
from hubasync.events.splitter import Batch
from hubasync.files.leftovers import Listing, list_folder, new_output_temporary, remove_temporaries
from hubasync.files.lock import lock_file
from hubasync.files.output import (
    Output,
    OutputMoved,
    find_by_identity,
    lock_output,
    open_output,
    resolve_output,
)
from hubasync.files.state import (
    RunState,
    check_state_path,
    fingerprint,
    load_state,
    save_state,
)
from hubasync.run.delivering import Deliveries, RecordEnd, Report
from hubasync.run.pipeline import Committed, Progress, Step, fetch_pages
from hubasync.run.settings import RunSettings
from hubasync.transport.session import HubSession

_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
TIME_KEYS = ("observation time", "source time")
Notice = Callable[[str], None]
Identity = Tuple[int, int]


def _quiet(message: str) -> None:
    pass


def run_fingerprint(settings: RunSettings) -> str:
    """What identifies the command a state belongs to: the share (without its key), the query,
    the format, the output's path, and the limit and token it started with."""
    output = os.path.abspath(settings.output) if settings.output else None
    return fingerprint(settings.share.display(), settings.query.pairs(), settings.format,
                       output, settings.limit, settings.token)


def cursor_from_state(state: RunState, limit: Optional[int]) -> Cursor:
    """The cursor a state file records (its limit is the command's)."""
    return Cursor(token=state.token, limit=limit, events=state.events, pages=state.pages,
                  last_inserted=state.last_inserted_token, done=state.complete,
                  more=state.complete and state.token is not None)


def _identity_of(path: str) -> Optional[Identity]:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _identity_of_fd(fd: int) -> Identity:
    info = os.fstat(fd)
    return (info.st_dev, info.st_ino)


def _size_of(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _epoch(text: str) -> Optional[int]:
    """Epoch seconds of a hub time (``YYYY-MM-DD HH:MM:SSZ``), or None."""
    try:
        parsed = time.strptime(text.strip().rstrip("Z").replace("T", " "), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return timegm(parsed)


class _Page:
    """One page on its way into the run's output (a
    :class:`~hubasync.run.pipeline.PageTransaction`)."""

    def __init__(self, run: ResumableRun, writer: FormatWriter) -> None:
        self._run = run
        self._writer = writer
        self.committed = False

    def write(self, batch: Batch) -> None:
        if self._run.save_before_writing:
            self._run.save()  # from now on a crash may leave a torn page past the offset
        self._writer.write(batch)

    def commit(self, cursor: Cursor) -> None:
        """The page becomes part of the output (flushed, and synced with a state), then the
        state records ``cursor``: a crash in between leaves the page past the committed offset,
        cut when the run continues."""
        run = self._run
        run.before_output()
        self._writer.commit()
        self.committed = True
        run.written += cursor.events - run.cursor.events
        run.cursor = cursor
        run.save()


class ResumableRun:
    """One share's events into one output, resumable (see the module's docstring)."""

    def __init__(self, settings: RunSettings, *, stdout: Optional[BinaryIO] = None,
                 notice: Notice = _quiet,
                 before_output: Callable[[], None] = lambda: None,
                 on_delivery: Callable[[Report], None] = lambda report: None) -> None:
        """``notice`` says what the run decided on its own (a file moved, a recovery);
        ``before_output`` is called before bytes reach the output (a terminal's progress line
        clears itself); ``on_delivery`` hears what each delivery to a destination did."""
        self.settings = settings
        self.before_output = before_output
        self.written = 0  # events in the output since the share began: the next one's number
        self.deliveries: Optional[Deliveries] = None
        self._on_delivery = on_delivery
        self.query = settings.query
        self.fingerprint = run_fingerprint(settings)
        self.cursor = Cursor(token=settings.token, limit=settings.limit)
        self.stalls = StallDetector(settings.bounds.max_empty_pages)
        self._stdout = stdout
        self._notice = notice
        self._locks = ExitStack()
        self._record: Optional[RunState] = None  # the state as last read or saved
        self._writer: Optional[FormatWriter] = None
        self._fresh_output = False  # the next opening starts a new file, whatever the record
        self._in_page = False
        # The state last saved says the output reopened now was closed cleanly (at its size
        # then): it is saved again before a page's first write, so that a crash in the page is
        # not taken for lines appended by someone else. Not at the reopening: a pass with no
        # event (most passes of a share caught up) saves it once less.
        self.save_before_writing = False

    # -- claiming and opening ----------------------------------------------------------------

    @property
    def growing(self) -> bool:
        """Whether the output is written in place and continued by later runs (JSON lines with
        a state, and every share of the service), rather than written whole and renamed."""
        settings = self.settings
        return settings.in_place or (settings.format == "jsonl" and (
            settings.state is not None or settings.existing == "append"))

    def claim(self, listing: Listing = list_folder) -> None:
        """Lock the state and the output, read and check them: everything that may refuse the
        run, before any request. ``listing`` lists the folders where temporary files a killed
        run left are looked for (a service passes one :class:`ListedOnce` to all its shares).

        Raises :class:`~hubasync.errors.Busy` when another process holds a lock,
        :class:`UsageError` when the state belongs to another command or an output exists that
        no state describes, :class:`OutputError` when a file cannot be used.
        """
        settings = self.settings
        try:
            if settings.state:
                self._locks.enter_context(lock_file(settings.state, what="state file"))
            if settings.output:
                self._locks.enter_context(lock_output(settings.output))
            state = None
            if settings.state:
                check_state_path(settings.state, listing)
                state = load_state(settings.state)
            if settings.in_place:
                self._remove_leftovers(listing)
            if state is not None and state.fingerprint != self.fingerprint:
                raise ClaimError(
                    f"state file {settings.state} belongs to another command (URL, query, format, "
                    "output, --limit or --token differ): remove it or use another one")
            if settings.destinations:
                self.deliveries = self._deliveries()
            if state is None:
                self._check_unclaimed_output()
            else:
                self.cursor = cursor_from_state(state, settings.limit)
                self.stalls = StallDetector.restored(state.stalls, settings.bounds.max_empty_pages)
                self.written = state.record_events
                if self.deliveries is not None:
                    self.deliveries.restore(state.deliveries, self._end_of(state))
                if settings.in_place:
                    self._complete_moved_output(state)
            self._record = state
        except BaseException:
            self.release()
            raise

    def _check_unclaimed_output(self) -> None:
        """An existing output that no state describes is written over or after only when
        asked."""
        settings = self.settings
        if settings.output is None:
            return
        target = resolve_output(settings.output)
        size = _size_of(target.path) if target.regular else 0
        if size == 0 or (settings.in_place and self._holds_only_an_empty_document(target.path)):
            return
        if settings.existing == "overwrite" or (
                settings.existing == "append" and settings.format == "jsonl"):
            return
        if settings.in_place:
            raise ClaimError(
                f"{settings.output} exists ({size:,} bytes) but no state describes it "
                f"({settings.state} is missing): it was not written by this share; move it away "
                "or point the share elsewhere")
        what = ("add the new events after the ones it holds, a second copy of them if they "
                "came from the same share" if settings.format == "jsonl" else "replace it")
        options = ("--append to add after it, --overwrite to replace it"
                   if settings.format == "jsonl" else "--overwrite to replace it")
        state = f"{settings.state} is missing" if settings.state else "no --state was given"
        raise ClaimError(
            f"{settings.output} exists ({size:,} bytes) and no state describes it ({state}): "
            f"a new download would {what}. Give {options}, or move it away (nothing was "
            "written)")

    def _complete_moved_output(self, state: RunState) -> None:
        """A share's file that is no longer at its path (moved away, by logrotate say, while
        this run was killed): complete it where it went, and start anew at the path."""
        settings = self.settings
        assert settings.output is not None
        recorded: Optional[Identity] = None
        if state.output_identity:
            recorded = (state.output_identity[0], state.output_identity[1])
        here = _identity_of(settings.output)
        if recorded is None:  # a state of version 2: its file is known by its content only
            if state.output_offset and not _size_of(settings.output):
                self._notice(f"{settings.output} is new or was moved away: writing a new one")
                self._fresh_output = True
            return
        if here == recorded:
            if _size_of(settings.output) < state.output_offset:
                self._cut_in_place()
            return
        old = self._find_by_identity(recorded)
        if old is None:
            self._notice(f"{settings.output} was moved away and its old file is not beside it: "
                         "it may end in a page cut short (moved while being written)")
        else:
            output = open_output(old, append=settings.format == "jsonl", atomic=False,
                                 resume_offset=state.output_offset, resume_tail=state.output_tail,
                                 resume_end=state.output_end, resume_identity=recorded,
                                 durable=True)
            reader = output.reader()
            self._writer_for(output, state.writer).close(complete=False)
            if self.deliveries is not None:
                self.deliveries.rotated(recorded, state.output_offset, reader)
            elif reader is not None:
                os.close(reader)
            self._notice(f"{settings.output} was moved to {old}: completed there; the next "
                         "events go to a new file at its path")
        if _size_of(settings.output) and not self._holds_only_an_empty_document(settings.output):
            raise ClaimError(
                f"{settings.output} is a new file that this share did not write (its own was "
                f"moved away): move it away too, or point the share elsewhere")
        self._fresh_output = True

    def _remove_leftovers(self, listing: Listing) -> None:
        """The temporary files a crash left while a new file was being put in place."""
        assert self.settings.output is not None
        path = os.path.abspath(resolve_output(self.settings.output).path)
        remove_temporaries(path, new_output_temporary(os.path.basename(path)), listing)

    def _find_by_identity(self, identity: Tuple[int, ...]) -> Optional[str]:
        assert self.settings.output is not None
        path = os.path.abspath(resolve_output(self.settings.output).path)
        return find_by_identity(os.path.dirname(path), identity)

    def open(self) -> bool:
        """Open the output where the state left it (or anew), and record where it starts.

        Returns False when the run finished before and has nothing more to do (a finished JSON
        or CSV download: its file is put in place if a crash came before the rename).
        """
        state = self._record
        if state is not None and state.complete:
            if not self._continues(state):
                self._finish_completed(state)
                return False
            self.next_pass()
        try:
            self._open_output()
        except OutputMoved:  # since it was claimed, or just made
            if self._record is None:
                raise
            self._complete_moved_output(self._record)
            self._open_output()
        if self.deliveries is not None and state is None:  # from where the record starts
            self.deliveries.restore({}, self.record_end())
        self.save()  # where the output starts, before a byte of it is written
        return True

    def _continues(self, state: RunState) -> bool:
        """Whether a finished run goes on: a growing output, after its limit or following."""
        settings = self.settings
        return self.growing and bool(
            state.token or settings.follow or self.query.sort == "_id" or settings.in_place)

    def _finish_completed(self, state: RunState) -> None:
        settings = self.settings
        assert settings.output is not None
        part = resolve_output(settings.output).path + ".part"
        if not self.growing and os.path.exists(part):
            output = open_output(settings.output, resume_offset=state.output_offset,
                                 resume_tail=state.output_tail, resume_end=state.output_end)
            self._writer_for(output, state.writer).close(complete=True)
        self._notice(f"already complete ({state.events:,} events; state {settings.state}): "
                     "nothing to do")

    def _open_output(self) -> None:
        settings = self.settings
        state = None if self._fresh_output else self._record
        self._fresh_output = False
        resume: Dict[str, Any] = {} if state is None else {
            "resume_offset": state.output_offset, "resume_tail": state.output_tail,
            "resume_end": state.output_end}
        if state is not None and settings.in_place and state.output_identity:
            resume["resume_identity"] = tuple(state.output_identity)
        if state is None and settings.in_place:
            assert settings.output is not None
            empty, identity = self._create_in_place(settings.output)
            resume = {"resume_offset": 0, "resume_tail": None, "resume_end": len(empty),
                      "resume_identity": identity}
            if empty and settings.state:  # the state names it before opening cuts its "[]"
                self._save_record(offset=0, tail=None, end=len(empty), identity=identity,
                                  writer={"format": settings.format, "started": False})
        if settings.output is None:
            output = open_output(None, stdout=self._stdout)
        elif self.growing:
            overwrite = state is None and settings.existing == "overwrite"
            output = open_output(settings.output, append=settings.format == "jsonl" and not
                                 overwrite, atomic=False, durable=settings.state is not None,
                                 **resume)
        else:
            output = open_output(settings.output, atomic=True,
                                 durable=settings.state is not None,
                                 **resume)
        self._writer = self._writer_for(output, None if state is None else state.writer)
        if self.deliveries is not None:
            self.deliveries.opened_next()

    def _empty_document(self) -> bytes:
        """What a file of this format holding no event is: ``[]`` for a JSON array."""
        return b"[]\n" if self.settings.format == "json" else b""

    def _holds_only_an_empty_document(self, path: str) -> bool:
        empty = self._empty_document()
        if _size_of(path) != len(empty):
            return False
        try:
            with open(path, "rb") as handle:
                return handle.read(len(empty) + 1) == empty
        except OSError:
            return False

    def _create_in_place(self, output: str) -> Tuple[bytes, Identity]:
        """A share's new file, put at its path whole: an empty document written under a
        temporary name, then linked to the path, so that a crash never leaves there (or, moved
        away, anywhere) a file that is not a valid document. Returns what it holds, and its
        identity.

        A file already at the path is taken over only when it holds no event (an empty file
        logrotate created, or the empty document of a crash before the state was saved)."""
        path = resolve_output(output).path
        empty = self._empty_document()
        if not empty:  # an empty file is a whole document of JSON lines or CSV: no temporary
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | _O_NOFOLLOW, 0o666)
            except OSError as error:
                raise OutputError(f"cannot write {output}: {error.strerror or error}") from None
            try:
                info = os.fstat(fd)
            finally:
                os.close(fd)
            if info.st_size:
                raise ClaimError(f"cannot start a new file at {output}: a file that this share "
                                 "did not write is there (move it away)")
            return empty, (info.st_dev, info.st_ino)
        folder, base = os.path.split(os.path.abspath(path))
        temporary = os.path.join(folder, f".{base}.new.{secrets.token_hex(4)}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o666)
        except OSError as error:
            raise OutputError(f"cannot write {output}: {error.strerror or error}") from None
        try:
            try:
                os.write(fd, empty)
                os.fsync(fd)
                info = os.fstat(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, path)
            except FileExistsError:
                if not (_size_of(path) == 0 or self._holds_only_an_empty_document(path)):
                    raise ClaimError(f"cannot start a new file at {output}: a file that this "
                                     "share did not write is there (move it away)") from None
                os.replace(temporary, path)
            # the state saved next syncs this directory, the new name included
        except OSError as error:
            raise OutputError(f"cannot write {output}: {error.strerror or error}") from None
        finally:
            try:
                os.unlink(temporary)
            except OSError:
                pass
        return empty, (info.st_dev, info.st_ino)

    def _writer_for(self, output: Output, resume: Optional[dict[str, object]]) -> FormatWriter:
        return format_writer(self.settings.format, output, projection=self.query.projection,
                             resume=resume)

    # -- the pages ---------------------------------------------------------------------------

    def url_for(self, cursor: Cursor) -> str:
        """The query URL of the page ``cursor`` starts."""
        return query_url(self.settings.share, self.query, limit=cursor.page_limit,
                         token=cursor.token)

    def pages(self, session: HubSession, *, attempts: Callable[[], Attempts],
              progress: Optional[Progress] = None,
              prefetch: bool = True) -> Generator[Step, None, None]:
        """The run loop from where the run stands into its output, as steps to drive.

        The stall detector goes on from what the state last recorded, not from pages a failed
        attempt checked but never committed.
        """
        memory = self._record.stalls if self._record is not None else {}
        if self.settings.state:
            self.stalls = StallDetector.restored(memory, self.settings.bounds.max_empty_pages)
        steps = fetch_pages(session, self.url_for, self.cursor, self, attempts=attempts,
                            stalls=self.stalls, prefetch=prefetch, progress=progress)
        if self.deliveries is None:
            return steps
        self.deliveries.clock = session.clock
        return self._delivering(steps, self.deliveries)

    def _delivering(self, steps: Generator[Step, None, None],
                    deliveries: Deliveries) -> Generator[Step, None, None]:
        """The run loop's steps with the destinations fed after each page: held back while
        one is :attr:`~Deliveries.max_lag` events behind, and the pass over once every
        destination has every event (a service's share: every destination not backing off)."""
        try:
            while True:
                if deliveries.held_back():
                    yield from deliveries.catch_up(below=deliveries.max_lag)
                try:
                    step = next(steps)
                except StopIteration:
                    break
                yield step
                if isinstance(step, Committed):
                    yield from deliveries.catch_up(wait=False)
            yield from deliveries.catch_up(wait=not deliveries.patient)
        finally:
            steps.close()

    def record_end(self) -> RecordEnd:
        """Where the output's committed events end: what the destinations may read."""
        assert self.settings.output is not None
        if self._writer is not None:
            identity, offset = self._writer.output.identity(), self._writer.offset
        else:
            record = self._record
            identity = None if record is None or record.output_identity is None else (
                record.output_identity[0], record.output_identity[1])
            offset = 0 if record is None else record.output_offset
        return RecordEnd(identity=identity, offset=offset, written=self.written,
                         path=resolve_output(self.settings.output).path)

    def _end_of(self, state: RunState) -> RecordEnd:
        assert self.settings.output is not None
        identity = None if state.output_identity is None else (
            state.output_identity[0], state.output_identity[1])
        return RecordEnd(identity=identity, offset=state.output_offset,
                         written=state.record_events,
                         path=resolve_output(self.settings.output).path)

    def _deliveries(self) -> Deliveries:
        settings = self.settings
        assert settings.output is not None
        stem = settings.output[:-len(".jsonl")] if settings.output.endswith(".jsonl") \
            else settings.output
        share = os.path.basename(stem)
        targets = [(name, open_destination(config, share), f"{stem}.{name}.dead.jsonl")
                   for name, config in settings.destinations]
        return Deliveries(targets, key_prefix=self.fingerprint[:16], record=self.record_end,
                          save=self.save, retries=settings.bounds.retries,
                          max_lag=settings.max_lag, report=self._on_delivery,
                          patient=settings.in_place and settings.follow)

    @contextmanager
    def page(self) -> Iterator[_Page]:
        """A page of the output, rolled back unless committed."""
        writer = self._ready_writer()
        page = _Page(self, writer)
        self._in_page = True
        try:
            yield page
        finally:
            self._in_page = False
            if not page.committed:
                writer.rollback()

    def _ready_writer(self) -> FormatWriter:
        in_place = self.settings.in_place
        if self._writer is None:
            cut = in_place and self._cut_while_suspended()
            moved = in_place and not cut and self._moved_while_suspended()
            if not (cut or moved):
                try:
                    self._open_output()
                    self.save_before_writing = True
                except OutputMoved:  # between that look and the opening
                    moved = True
            if cut:
                self._cut_in_place()
                self._start_new_file()
            elif moved:
                self._rotated_while_suspended()
                self._start_new_file()  # the old file was completed when the run suspended
        elif in_place and self._moved():
            self._complete_current_file()
            self._start_new_file()
        assert self._writer is not None
        return self._writer

    def save(self) -> None:
        """Record where the run stands in the state file (with a state; between pages). With
        the output closed (a share suspended between turns), only the deliveries' positions
        can have moved: the state last saved is saved again with them."""
        settings = self.settings
        if not settings.state:
            return
        if self._writer is None:
            if self._record is not None and self.deliveries is not None:
                record = dataclasses.replace(self._record, deliveries=self.deliveries.saved())
                save_state(settings.state, record)
                self._record = record
            return
        writer = self._writer
        output = writer.output
        # once a document is finished, its ending lies past the offset a later run continues at
        tail = output.committed_tail() if output.offset == writer.offset else None
        self._save_record(offset=writer.offset, tail=tail, end=output.end,
                          identity=output.identity(), writer=writer.resume_info())
        self.save_before_writing = False

    def _save_record(self, *, offset: int, tail: Optional[str], end: Optional[int],
                     identity: Optional[Identity], writer: Dict[str, object]) -> None:
        """Save the run's state, its output at ``offset`` in the file of ``identity``."""
        assert self.settings.state
        record = RunState(
            fingerprint=self.fingerprint, token=self.cursor.token, output_offset=offset,
            events=self.cursor.events, pages=self.cursor.pages, complete=self.cursor.done,
            last_inserted_token=self.cursor.last_inserted, writer=writer,
            output_tail=tail, output_end=end,
            output_identity=None if identity is None else list(identity),
            stalls=self.stalls.memory(), record_events=self.written,
            deliveries={} if self.deliveries is None else self.deliveries.saved())
        save_state(self.settings.state, record)
        self._record = record

    # -- passes, rotation, recovery ----------------------------------------------------------

    def next_pass(self) -> None:
        """Following: the next pass starts from the newest insertion, its bounds afresh."""
        self.cursor = self.cursor.next_pass()
        self.stalls = StallDetector(self.settings.bounds.max_empty_pages)
        if self._record is not None:
            self._record = dataclasses.replace(self._record, stalls={})

    def _moved_while_suspended(self) -> bool:
        assert self.settings.output is not None
        record = self._record
        if record is None or record.output_identity is None:
            return False
        return _identity_of(self.settings.output) != tuple(record.output_identity)

    def _cut_while_suspended(self) -> bool:
        """Whether the share's file, still at its path, was cut (``copytruncate``)."""
        assert self.settings.output is not None
        record = self._record
        if record is None or record.output_identity is None:
            return False
        return (_identity_of(self.settings.output) == tuple(record.output_identity)
                and _size_of(self.settings.output) < record.output_offset)

    def _cut_in_place(self) -> None:
        """The share's file was cut in place (``copytruncate``): its events are in the copy
        logrotate made; the file is started anew. A destination that had not delivered them
        yet cannot any more: said, for each."""
        assert self.settings.output is not None
        self._notice(f"{self.settings.output} was cut in place (copytruncate): its events are "
                     "in the copy; the next events go to it anew")
        self._fresh_output = True
        if self.deliveries is not None:
            for name, lost in self.deliveries.cut().items():
                if lost:
                    self._notice(f"{name}: {lost:,} events not yet delivered were cut away "
                                 "with the file (use logrotate's create mode, not copytruncate)")

    def _moved(self) -> bool:
        """Whether the file being written is no longer the one at the path, or was cut
        (``copytruncate``)."""
        assert self._writer is not None and self.settings.output is not None
        output = self._writer.output
        if _identity_of(self.settings.output) != output.identity():
            return True
        size = output.size_on_disk()
        return size is not None and size < output.offset

    def _rotated_while_suspended(self) -> None:
        """The destinations still reading the file moved away while the share was suspended
        read on in it, found beside the path by its identity (its end: the state's offset)."""
        record = self._record
        if self.deliveries is None or record is None or record.output_identity is None:
            return
        identity = (record.output_identity[0], record.output_identity[1])
        path = self._find_by_identity(identity)
        reader = None
        if path is not None:
            try:
                reader = os.open(path, os.O_RDONLY)
            except OSError:
                reader = None
        if reader is not None and _identity_of_fd(reader) != identity:
            os.close(reader)
            reader = None
        self.deliveries.rotated(identity, record.output_offset, reader)

    def _complete_current_file(self) -> None:
        """Close the file being written as a valid document, wherever it was moved; a file
        cut under the run (``copytruncate``) is let go as it is."""
        assert self._writer is not None
        old, self._writer = self._writer, None
        if (old.output.size_on_disk() or 0) < old.output.offset:
            old.output.detach()
            self._cut_in_place()
            return
        identity, end = old.output.identity(), old.offset
        reader = old.output.reader() if self.deliveries is not None else None
        old.close(complete=False)
        if self.deliveries is not None and identity is not None:
            self.deliveries.rotated(identity, end, reader)

    def _start_new_file(self) -> None:
        """Start a new file at the path, the state saved before a byte goes into it."""
        assert self.settings.output is not None
        self._notice(f"starting a new file at {self.settings.output}")
        self._fresh_output = True
        self._open_output()
        self.save()

    def suspend(self) -> None:
        """Between turns of a service: the document closed (a JSON array ended), the file let
        go, the state saying where it ends; the next page reopens it. Not while a page is
        being written (a body still arriving): then it does nothing."""
        if self._writer is not None and not self._in_page:
            self._writer.close(complete=False)
            self.save()
            self._writer = None

    def recover(self) -> None:
        """The stored token is invalid: start again from the time of the last event written
        (JSON lines with a state; events of that second may be written again)."""
        start = self._last_event_time()
        if start is None:
            raise UsageError("--recover: no event with a time was written yet; remove the "
                             "state file to start over")
        self.query = dataclasses.replace(self.query, start=str(start))
        self._notice(f"the stored token is no longer valid: starting again from "
                     f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(start))}, the time of "
                     "the last event written (events from that time on may be written again)")
        self.cursor = dataclasses.replace(self.cursor, token=None)
        self.save()

    def _last_event_time(self) -> Optional[int]:
        """The time of the last event of the JSON-lines output, read from its end."""
        assert self.settings.output is not None
        try:
            with open(self.settings.output, "rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - 1024 * 1024))
                lines = handle.read().splitlines()
        except OSError as error:
            raise OutputError(f"cannot read {self.settings.output}: {error.strerror}") from None
        for line in reversed(lines):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                for key in TIME_KEYS:
                    value = event.get(key)
                    if isinstance(value, str) and _epoch(value) is not None:
                        return _epoch(value)
        return None

    # -- ending ------------------------------------------------------------------------------

    def finish(self) -> None:
        """The run is done: the document completed (a JSON array closed, a ``.part`` renamed
        into place) and the state saying so."""
        if self._writer is None:
            self._open_output()
        assert self._writer is not None
        self.before_output()
        self._writer.close(complete=True)
        self.save()

    def stop_early(self) -> None:
        """Stopped or failed: the output keeps its committed pages, closed as a valid document,
        and the state says where it ends (so that what others add to it later is seen). On
        standard output, a run that committed no page writes nothing at all (not even ``[]``:
        a loader would read it as "no events")."""
        writer = self._writer
        if writer is None:
            return
        nothing = self.settings.output is None and self.cursor.pages == 0 and not writer.started
        self.before_output()
        try:
            writer.close(complete=False, end_document=not nothing)
            self.save()
        finally:
            self._writer = None

    def abort_deliveries(self) -> None:
        """A stop, from the stopping thread: a delivery blocked on its receiver is broken off
        (its position stays where the receiver's acknowledgements left it)."""
        deliveries = self.deliveries
        if deliveries is not None:
            deliveries.abort()

    def release(self) -> None:
        """Let go of the locks (the output and the state are closed first by their owner),
        and of the destinations' connections."""
        try:
            if self.deliveries is not None:
                self.deliveries.close()
        finally:
            self._locks.close()
