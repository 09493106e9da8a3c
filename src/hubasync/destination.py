"""The output of a run and its state, written one page at a time, together.

:class:`OutputDestination` is the :class:`~hubasync.pipeline.Destination` of the command line
(and of the sync service): a page's batches go to the sink; its commit flushes the output (and
syncs it, when a state is kept), then records the new cursor in the state file, both inside one
critical section that a signal cannot cut in two. A page left without a commit is rolled back.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from .cursor import Cursor
from .signals import Stopper
from .sinks import Sink
from .state import RunState
from .stream import Batch

SaveState = Callable[[Cursor, Sink], None]


def run_state(fingerprint: str, cursor: Cursor, sink: Sink) -> RunState:
    """What the state file records after a commit: the cursor, and where the output stands
    (its committed offset, the checksum of the bytes before it, and its size once closed)."""
    output = sink.output
    # once a document is finished, its ending lies past the offset a later run would continue
    tail = output.committed_tail() if output.offset == sink.offset else None
    return RunState(fingerprint=fingerprint, token=cursor.token, output_offset=sink.offset,
                    events=cursor.events, pages=cursor.pages, complete=cursor.done,
                    last_inserted_token=cursor.last_inserted, sink=sink.resume_info(),
                    output_tail=tail, output_end=output.end)


class _Page:
    def __init__(self, destination: OutputDestination) -> None:
        self._destination = destination
        self.committed = False

    def write(self, batch: Batch) -> None:
        self._destination.sink.write_batch(batch)

    def commit(self, cursor: Cursor) -> None:
        destination = self._destination
        with destination.stopper.critical():
            destination.sink.commit_page()
            self.committed = True
            destination.cursor = cursor
            if destination.save is not None:
                destination.save(cursor, destination.sink)


class OutputDestination:
    """A sink, and the state saved after each of its pages; ``cursor`` is the position of the
    last page committed (a signal held back during the commit is raised right after it)."""

    def __init__(self, sink: Sink, save: Optional[SaveState], stopper: Stopper,
                 cursor: Cursor) -> None:
        self.cursor = cursor
        self.sink = sink
        self.save = save
        self.stopper = stopper

    @contextmanager
    def page(self) -> Iterator[_Page]:
        page = _Page(self)
        try:
            yield page
        finally:
            if not page.committed:
                self.sink.rollback_page()
