"""Driving a run's steps to their end: sleeping through its waits, noticing a stop.

The run loop and the session are generators of steps (:mod:`hubasync.run.pipeline`): they
never sleep themselves. :func:`drive` is the driver of the command line and the library: it
sleeps until each :class:`~hubasync.core.clock.Wait` is over, hands each commit to a callback,
and, when a stop is asked, closes the generator (so the page being written is rolled back and
a query sent ahead is cancelled) and raises :class:`~hubasync.errors.Interrupted`. The sync
service drives its shares' steps itself, a turn at a time (:mod:`hubasync.service.scheduler`).
"""

from __future__ import annotations

from typing import Callable, Generator, Iterator, Optional, TypeVar, Union

from hubasync.core.clock import Clock, Wait
from hubasync.core.cursor import Cursor
from hubasync.run.pipeline import Committed
from hubasync.run.stopping import StopRequest

T = TypeVar("T")
Steps = Generator[Union[Wait, Committed], None, T]


def drive(steps: Steps[T], clock: Clock, stop: Optional[StopRequest] = None,
          on_commit: Optional[Callable[[Cursor], None]] = None) -> T:
    """Run ``steps`` to their end and return their result (see the module's docstring)."""
    try:
        while True:
            try:
                step = next(steps)
            except StopIteration as end:
                return end.value  # type: ignore[no-any-return]
            if stop is not None:
                stop.check()
            if isinstance(step, Committed):
                if on_commit is not None:
                    on_commit(step.cursor)
            elif step.until is not None:
                delay = step.until - clock.now()
                if delay > 0:
                    clock.sleep(delay)
                if stop is not None:
                    stop.check()
    finally:
        steps.close()


def commits(steps: Steps[None], clock: Clock,
            stop: Optional[StopRequest] = None) -> Iterator[Cursor]:
    """The cursor of each commit of ``steps``, as they come, sleeping through their waits; the
    steps are closed (a page in progress rolled back) when the iteration stops early."""
    try:
        for step in steps:
            if stop is not None:
                stop.check()
            if isinstance(step, Committed):
                yield step.cursor
            elif step.until is not None:
                delay = step.until - clock.now()
                if delay > 0:
                    clock.sleep(delay)
    finally:
        steps.close()
