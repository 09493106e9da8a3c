"""One run of the command: a count, or pages into the output, with state, progress and follow.

The pages themselves go through :func:`hubasync.pipeline.fetch_pages`; this module sets the run
up (the state it continues, the output, the writer), follows passes, recovers from an invalid
token, and ends the run: whatever ends it (the end of the events, the limit, an error, a
signal), the output is closed holding whole events only, and the token that continues right
after the last committed page is the last line of stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from calendar import timegm
from contextlib import ExitStack
from typing import Callable, Optional

from hubasync.cli.messages import say, say_line, say_traceback
from hubasync.cli.progress import Progress
from hubasync.core.cursor import Cursor
from hubasync.core.params import Query, query_url
from hubasync.core.redaction import redact
from hubasync.core.retry import Attempts, RetryNote, RetryPolicy
from hubasync.core.stalls import StallDetector
from hubasync.errors import (
    ExitCode,
    HubasyncError,
    Interrupted,
    OutputError,
    QueryRejected,
    UsageError,
)
from hubasync.events.formats import FormatWriter, format_writer
from hubasync.files.lock import lock_file
from hubasync.files.output import lock_output, open_output, resolve_output
from hubasync.files.state import RunState, check_state_path, fingerprint, load_state, save_state
from hubasync.run.pipeline import fetch_pages
from hubasync.run.recorder import Recorder, cursor_from_state, run_state
from hubasync.run.settings import RunSettings
from hubasync.run.stopping import Stopper
from hubasync.transport.body import PageStream
from hubasync.transport.http import hub_transport
from hubasync.transport.session import HubSession

TIME_KEYS = ("observation time", "source time")


def run(settings: RunSettings) -> int:
    """Carry out a checked command line; returns the exit code."""
    stopper = Stopper()
    stopper.install()
    progress = Progress(sys.stderr, enabled=_progress_wanted(settings))

    def on_retry(reason: str, wait: float, failures: int) -> None:
        note = redact(f"retry {failures}/{settings.bounds.retries} in {wait:.1f} s: {reason}",
                      *settings.secrets)
        if settings.debug:
            say(note)
        progress.note(note)

    session = _session(settings, settings.share.count)
    try:
        with ExitStack() as locks:  # one writer per file, before anything is written
            if settings.state:
                locks.enter_context(lock_file(settings.state, what="state file"))
            if settings.output:
                locks.enter_context(lock_output(settings.output))
            if settings.share.count:
                return _count(settings, session, session.attempts(on_retry))
            return Download(settings, session, progress, stopper, on_retry).run()
    finally:
        session.close()
        stopper.uninstall()


def _session(settings: RunSettings, count: bool, retries: Optional[int] = None) -> HubSession:
    share = settings.share.with_count(count)
    bounds = settings.bounds
    transport = hub_transport(share, settings.apikey, timeout=bounds.timeout,
                              cacert=settings.cacert, trace=say if settings.debug else None,
                              proxy=settings.proxy)
    policy = RetryPolicy(retries=bounds.retries if retries is None else retries)
    return HubSession(transport, policy=policy, job_timeout=bounds.job_timeout,
                      page_timeout=bounds.page_timeout, strict=settings.strict,
                      max_event_size=bounds.max_event_size)


def _progress_wanted(settings: RunSettings) -> bool:
    if settings.quiet:
        return False
    if settings.progress is not None:
        return settings.progress
    return sys.stderr.isatty()


def _count(settings: RunSettings, session: HubSession, attempts: Attempts) -> int:
    output = open_output(settings.output, atomic=True)
    try:
        job = session.job(query_url(settings.share.with_count(True), settings.query))
        count = session.count(job, attempts)
        output.write(json.dumps({"count": count}).encode() + b"\n")
        output.commit()
    except BaseException:
        output.close(complete=False)
        raise
    output.close(complete=True)
    return ExitCode.OK


def _epoch(text: str) -> Optional[int]:
    """Epoch seconds of a hub time (``YYYY-MM-DD HH:MM:SSZ``), or None."""
    try:
        parsed = time.strptime(text.strip().rstrip("Z").replace("T", " "), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return timegm(parsed)


class Download:
    """Pages into a writer, with the state file kept in step."""

    def __init__(self, settings: RunSettings, session: HubSession, progress: Progress,
                 stopper: Stopper, on_retry: RetryNote,
                 counter: Optional[Callable[[], HubSession]] = None) -> None:
        self.settings = settings
        self.session = session
        self.counter = counter or (lambda: _session(settings, count=True, retries=1))
        self.progress = progress
        self.stopper = stopper
        self.on_retry = on_retry
        self.query = settings.query
        self.cursor = Cursor(token=settings.token, limit=settings.limit)
        self.fingerprint = fingerprint(
            settings.share.display(), settings.query.pairs(), settings.format,
            os.path.abspath(settings.output) if settings.output else None,
            settings.limit, settings.token,
        )

    def run(self) -> int:
        settings = self.settings
        state: Optional[RunState] = None
        if settings.state:
            check_state_path(settings.state)
            state = load_state(settings.state)
        resume_offset: Optional[int] = None
        resume_format: Optional[dict[str, object]] = None
        if state is not None:
            if state.fingerprint != self.fingerprint:
                raise UsageError(
                    f"state file {settings.state} belongs to another command (URL, query, "
                    "format, output, --limit or --token differ): remove it or use another one"
                )
            resume_offset, resume_format = state.output_offset, state.writer
            self.cursor = cursor_from_state(state, settings.limit)
            if state.complete and not self._continues(state):
                self._finish_completed(state)
                return ExitCode.OK
            if state.complete:  # a sync goes on from the newest event, or from the limit
                self.cursor = self.cursor.next_pass()
        append = settings.format == "jsonl" and settings.state is not None
        output = open_output(settings.output, append=append, atomic=not append,
                             resume_offset=resume_offset, durable=settings.state is not None,
                             resume_tail=state.output_tail if state else None,
                             resume_end=state.output_end if state else None)
        writer = format_writer(settings.format, output, projection=self.query.projection,
                         resume=resume_format)
        if state is None and self.progress.enabled and not settings.follow:
            self._learn_total()
        return self._pages(writer)

    def _continues(self, state: RunState) -> bool:
        """Whether a finished run's JSON-lines file goes on: after the limit, or a sync."""
        return self.settings.format == "jsonl" and bool(
            state.token or self.settings.follow or self.query.sort == "_id"
        )

    def _finish_completed(self, state: RunState) -> None:
        """A finished run whose output may not have been renamed into place yet."""
        settings = self.settings
        assert settings.output is not None
        part = resolve_output(settings.output).path + ".part"
        if settings.format != "jsonl" and os.path.exists(part):
            output = open_output(settings.output, resume_offset=state.output_offset,
                                 resume_tail=state.output_tail, resume_end=state.output_end)
            format_writer(settings.format, output, projection=self.query.projection,
                      resume=state.writer).close(complete=True)
        if not settings.quiet:
            say(f"already complete ({state.events} events; state {settings.state}): "
                 "nothing to do")

    def _learn_total(self) -> None:
        """For the progress line: how many events the run will bring, if cheap to know."""
        if self.cursor.token is not None:
            return
        query = Query(start=self.query.start, end=self.query.end, filter=self.query.filter,
                      extra=self.query.extra)
        counter = self.counter()
        try:
            job = counter.job(query_url(self.settings.share.with_count(True), query))
            total = counter.count(job, counter.attempts())
        except HubasyncError:
            return
        finally:
            counter.close()
        limit = self.settings.limit
        self.progress.total = total if limit is None else min(total, limit)

    def _url(self, cursor: Cursor) -> str:
        return query_url(self.settings.share, self.query, limit=cursor.page_limit,
                         token=cursor.token)

    def _pages(self, writer: FormatWriter) -> int:
        settings = self.settings
        save = self._save if settings.state else None
        cursor = self.cursor.starting()
        recorder = self.recorder = Recorder(writer, save, self.stopper, cursor)
        if save is not None:  # where the output starts, before a byte of it is written
            with self.stopper.critical():
                save(cursor, writer)

        def progress(at: Cursor, stream: PageStream) -> None:
            self.progress.update(at.events + stream.events, at.pages)

        try:
            while True:
                pages = fetch_pages(
                    self.session, self._url, cursor, recorder,
                    attempts=lambda: self.session.attempts(self.on_retry),
                    stalls=StallDetector(settings.bounds.max_empty_pages), progress=progress)
                try:
                    for cursor in pages:
                        self.progress.update(cursor.events, cursor.pages)
                except QueryRejected as error:
                    if not (error.invalid_token and settings.recover):
                        raise
                    cursor = self._recover(writer)
                    continue
                if not settings.follow:
                    break
                self.progress.note("up to date")
                self.session.clock.sleep(settings.interval)
                cursor = recorder.cursor.next_pass()
            with self.stopper.critical():
                writer.close(complete=True)
                self._save(recorder.cursor, writer)
        except Interrupted as stop:
            return self._stopped(writer, stop)
        except HubasyncError as error:
            return self._failed(writer, error)
        done = recorder.cursor
        self.progress.update(done.events, done.pages, force=True)
        self.progress.clear()
        if done.more and done.token:
            say_line(done.token)
        return ExitCode.OK

    def _recover(self, writer: FormatWriter) -> Cursor:
        """The stored token is invalid: start again from the time of the last event written."""
        start = self._last_event_time()
        if start is None:
            raise UsageError("--recover: no event with a time was written yet; remove the "
                             "state file to start over")
        self.query = dataclasses.replace(self.query, start=str(start))
        say(f"the stored token is no longer valid: starting again from "
             f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(start))}, the time of the last "
             "event written (events from that time on may be written again)")
        cursor = dataclasses.replace(self.recorder.cursor, token=None)
        with self.stopper.critical():
            self._save(cursor, writer)
            self.recorder.cursor = cursor
        return cursor

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

    def _save(self, cursor: Cursor, writer: FormatWriter) -> None:
        if not self.settings.state:
            return
        save_state(self.settings.state, run_state(self.fingerprint, cursor, writer))

    def _close_early(self, writer: FormatWriter) -> None:
        """Leave the output holding its committed pages, and the state saying where it ends
        (so that what others add to it later is seen)."""
        try:
            writer.rollback()
            writer.close(complete=False)
            self._save(self.recorder.cursor, writer)
        except OutputError as error:
            say(str(error))

    def _stopped(self, writer: FormatWriter, stop: Interrupted) -> int:
        self._close_early(writer)
        self.progress.clear()
        if self.settings.follow:
            if not self.settings.quiet:
                say(f"{stop}: {self.recorder.cursor.events} events written in this pass")
            return ExitCode.OK
        say(str(stop))
        if self.recorder.cursor.token:
            say_line(self.recorder.cursor.token)
        return ExitCode.INTERRUPTED

    def _failed(self, writer: FormatWriter, error: HubasyncError) -> int:
        if self.settings.debug:
            say_traceback(error)
        self._close_early(writer)
        self.progress.clear()
        message = str(error)
        token = self.recorder.cursor.token
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

