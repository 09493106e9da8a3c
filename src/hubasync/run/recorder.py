"""The output of a run and its state, written one page at a time, together.

:class:`Recorder` is the :class:`~hubasync.pipeline.Destination` of the command line
(and of the sync service): a page's batches go to the writer; its commit flushes the output (and
syncs it, when a state is kept), then records the new cursor in the state file, both inside one
critical section that a signal cannot cut in two. A page left without a commit is rolled back.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from hubasync.core.cursor import Cursor
from hubasync.events.formats import FormatWriter
from hubasync.events.splitter import Batch
from hubasync.files.state import RunState
from hubasync.run.stopping import Stopper

SaveState = Callable[[Cursor, FormatWriter], None]


def cursor_from_state(state: RunState, limit: Optional[int]) -> Cursor:
    """The cursor a state file records (its limit is the command's)."""
    return Cursor(token=state.token, limit=limit, events=state.events, pages=state.pages,
                  last_inserted=state.last_inserted_token, done=state.complete,
                  more=state.complete and state.token is not None)


def run_state(fingerprint: str, cursor: Cursor, writer: FormatWriter) -> RunState:
    """What the state file records after a commit: the cursor, and where the output stands
    (its committed offset, the checksum of the bytes before it, and its size once closed)."""
    output = writer.output
    # once a document is finished, its ending lies past the offset a later run would continue
    tail = output.committed_tail() if output.offset == writer.offset else None
    return RunState(fingerprint=fingerprint, token=cursor.token, output_offset=writer.offset,
                    events=cursor.events, pages=cursor.pages, complete=cursor.done,
                    last_inserted_token=cursor.last_inserted, writer=writer.resume_info(),
                    output_tail=tail, output_end=output.end)


class _Page:
    def __init__(self, recorder: Recorder) -> None:
        self._destination = recorder
        self.committed = False

    def write(self, batch: Batch) -> None:
        self._destination.writer.write(batch)

    def commit(self, cursor: Cursor) -> None:
        recorder = self._destination
        with recorder.stopper.critical():
            recorder.writer.commit()
            self.committed = True
            recorder.cursor = cursor
            if recorder.save is not None:
                recorder.save(cursor, recorder.writer)


class Recorder:
    """A writer, and the state saved after each of its pages; ``cursor`` is the position of the
    last page committed (a signal held back during the commit is raised right after it)."""

    def __init__(self, writer: FormatWriter, save: Optional[SaveState], stopper: Stopper,
                 cursor: Cursor) -> None:
        self.cursor = cursor
        self.writer = writer
        self.save = save
        self.stopper = stopper

    @contextmanager
    def page(self) -> Iterator[_Page]:
        page = _Page(self)
        try:
            yield page
        finally:
            if not page.committed:
                self.writer.rollback()
