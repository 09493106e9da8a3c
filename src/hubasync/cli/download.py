"""One run of the command: a count, or pages into the output, with state, progress and follow.

The run itself is a :class:`~hubasync.run.resumable.ResumableRun` (the cursor, the output and
its state) fed by the run loop (:func:`hubasync.run.pipeline.fetch_pages`); this module drives
it for the command line: follows passes, recovers from an invalid token, shows progress, and
ends the run. Whatever ends it (the end of the events, the limit, an error, a signal), the
output is closed holding whole events only, and the token that continues right after the last
committed page is the last line of stderr.

The run works on a thread of its own while the main thread watches the signals
(:func:`hubasync.run.stopping.supervise`): SIGINT, SIGTERM and SIGHUP only set a flag; the run
notices the stop between two steps (at most :data:`~hubasync.core.clock.IO_SLICE` apart, or a
blocking call the supervisor breaks after a grace period), rolls back the page in progress and
stops cleanly.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from typing import Callable, Optional

from hubasync.cli.messages import say, say_line, say_traceback
from hubasync.cli.progress import Progress
from hubasync.core.clock import Clock
from hubasync.core.cursor import Cursor
from hubasync.core.params import Query, query_url
from hubasync.core.redaction import redact
from hubasync.core.retry import RetryNote, RetryPolicy
from hubasync.errors import ExitCode, HubasyncError, Interrupted, OutputError, QueryRejected
from hubasync.files.output import lock_output, open_output
from hubasync.run.driving import drive
from hubasync.run.resumable import ResumableRun
from hubasync.run.settings import RunSettings
from hubasync.run.stopping import SignalFlags, StoppableClock, StopRequest, supervise
from hubasync.transport.body import PageStream
from hubasync.transport.http import hub_transport
from hubasync.transport.session import HubSession


def run(settings: RunSettings) -> int:
    """Carry out a checked command line; returns the exit code."""
    flags = SignalFlags()
    stop = StopRequest()
    progress = Progress(sys.stderr, enabled=_progress_wanted(settings),
                        stdout=sys.stdout if settings.output is None else None)
    with progress.attached():  # every message clears the progress line first
        if not flags.install():  # not the main thread (a caller's own thread): no signals
            return _command(settings, progress, stop)
        try:
            return supervise(lambda: _command(settings, progress, stop), flags, stop)
        finally:
            flags.uninstall()


def _command(settings: RunSettings, progress: Progress, stop: StopRequest) -> int:
    def on_retry(reason: str, wait: float, failures: int) -> None:
        note = redact(f"retry {failures}/{settings.bounds.retries} in {wait:.1f} s: {reason}",
                      *settings.secrets)
        if settings.debug:
            say(note)
        progress.note(note)

    clock = StoppableClock(stop)
    session = make_session(settings, settings.share.count, clock)
    stop.on_abort(session.transport.abort)
    try:
        if settings.share.count:
            return _count(settings, session, stop, on_retry)
        return Download(settings, session, progress, stop, on_retry).run()
    finally:
        session.close()


def make_session(settings: RunSettings, count: bool, clock: Clock,
                 retries: Optional[int] = None) -> HubSession:
    """The session of a run (or of its count), with the run's bounds."""
    share = settings.share.with_count(count)
    bounds = settings.bounds
    transport = hub_transport(share, settings.apikey, timeout=bounds.timeout,
                              cacert=settings.cacert, trace=say if settings.debug else None,
                              proxy=settings.proxy)
    policy = RetryPolicy(retries=bounds.retries if retries is None else retries)
    return HubSession(transport, policy=policy, clock=clock, job_timeout=bounds.job_timeout,
                      page_timeout=bounds.page_timeout, strict=settings.strict,
                      max_event_size=bounds.max_event_size)


def _progress_wanted(settings: RunSettings) -> bool:
    if settings.quiet:
        return False
    if settings.progress is not None:
        return settings.progress
    return sys.stderr.isatty()


def _count(settings: RunSettings, session: HubSession, stop: StopRequest,
           on_retry: RetryNote) -> int:
    with lock_output(settings.output) if settings.output else nullcontext():
        output = open_output(settings.output, atomic=True)
        try:
            job = session.job(query_url(settings.share.with_count(True), settings.query))
            count = drive(session.count(job, session.attempts(on_retry)), session.clock, stop)
            output.write(json.dumps({"count": count}).encode() + b"\n")
            output.commit()
        except BaseException:
            output.close(complete=False)
            raise
        output.close(complete=True)
    return ExitCode.OK


class Download:
    """The command's run: its pages, passes, progress and ending."""

    def __init__(self, settings: RunSettings, session: HubSession, progress: Progress,
                 stop: StopRequest, on_retry: RetryNote,
                 counter: Optional[Callable[[], HubSession]] = None) -> None:
        self.settings = settings
        self.session = session
        self.counter = counter or (
            lambda: make_session(settings, True, session.clock, retries=1))
        self.progress = progress
        self.stop = stop
        self.on_retry = on_retry
        self._written_before = 0
        self.resumable = ResumableRun(settings, notice=self._notice,
                                      before_output=progress.before_output)
        stop.on_abort(self.resumable.abort_deliveries)

    def _notice(self, message: str) -> None:
        if not self.settings.quiet:
            self.progress.clear()
            say(message)

    def run(self) -> int:
        run = self.resumable
        run.claim()
        try:
            if not run.open():
                return ExitCode.OK
            self._written_before = run.written
            if self.settings.progress_total and self.progress.enabled:
                self._learn_total()
            return self._pages()
        finally:
            run.release()

    def _learn_total(self) -> None:
        """For the progress line, when asked: how many events the run will bring."""
        run = self.resumable
        if run.cursor.token is not None or run.cursor.events:
            return
        query = Query(start=run.query.start, end=run.query.end, filter=run.query.filter,
                      extra=run.query.extra)
        counter = self.counter()
        self.stop.on_abort(counter.transport.abort)
        try:
            job = counter.job(query_url(self.settings.share.with_count(True), query))
            total = drive(counter.count(job, counter.attempts()), counter.clock, self.stop)
        except Interrupted:
            raise
        except HubasyncError:
            return
        finally:
            counter.close()
        limit = self.settings.limit
        self.progress.total = total if limit is None else min(total, limit)

    def _pages(self) -> int:
        settings, run, progress = self.settings, self.resumable, self.progress

        def streaming(at: Cursor, stream: PageStream) -> None:
            progress.update(at.events + stream.events, at.pages)

        def committed(at: Cursor) -> None:
            progress.update(at.events, at.pages)

        try:
            while True:
                steps = run.pages(self.session, progress=streaming,
                                  attempts=lambda: self.session.attempts(self.on_retry))
                try:
                    drive(steps, self.session.clock, self.stop, on_commit=committed)
                except QueryRejected as error:
                    if not (error.invalid_token and settings.recover):
                        raise
                    run.recover()
                    continue
                if not settings.follow:
                    break
                progress.note("up to date")
                self.session.clock.sleep(settings.interval)
                run.next_pass()
            run.finish()
        except Interrupted as stop:
            return self._stopped(stop)
        except HubasyncError as error:
            return self._failed(error)
        done = run.cursor
        progress.finish(done.events, done.pages)
        if done.more and done.token:
            say_line(done.token)
        return ExitCode.OK

    def _close_early(self) -> None:
        try:
            self.resumable.stop_early()
        except OutputError as error:
            say(str(error))

    def _stopped(self, stop: Interrupted) -> int:
        self._close_early()
        self.progress.clear()
        cursor = self.resumable.cursor
        if self.settings.follow:
            if not self.settings.quiet:
                written = self.resumable.written - self._written_before
                say(f"{stop}: {written:,} events written by this run")
            return ExitCode.OK
        say(str(stop))
        if cursor.token:
            say_line(cursor.token)
        return ExitCode.INTERRUPTED

    def _failed(self, error: HubasyncError) -> int:
        if self.settings.debug:
            say_traceback(error)
        self._close_early()
        self.progress.clear()
        message = str(error)
        token = self.resumable.cursor.token
        if (isinstance(error, QueryRejected) and error.invalid_token and token
                and self.settings.state):
            hint = ("run again with --recover to start from the time of the last event "
                    "written, or " if self.settings.format == "jsonl" else "")
            message += (f" (the token in {self.settings.state} can no longer be continued: "
                        f"{hint}remove the state file to start over)")
        say(message)
        if token and not isinstance(error, (OutputError, QueryRejected)):
            say_line(token)
        return error.exit_code
