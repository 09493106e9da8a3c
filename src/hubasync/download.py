"""One run of the command: count, or pages into the output, with state, progress and follow.

The output only ever grows by whole pages: each page is committed to the sink and then, in
the same critical section, recorded in the state file. Whatever ends the run (the end of the
events, the limit, an error, a signal), the output is closed so it holds whole events only,
and the token that continues right after the last committed page is the last line of stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from calendar import timegm
from dataclasses import dataclass
from typing import Optional

from .cli import PROG, Settings
from .errors import (
    ExitCode,
    HubasyncError,
    Interrupted,
    OutputError,
    ProtocolError,
    QueryRejected,
    UsageError,
)
from .output import open_output
from .pages import Pager
from .params import Query, encode_query
from .progress import Progress
from .retry import RetryPolicy
from .session import HubSession, PageHead
from .signals import Stopper
from .sinks import Sink, make_sink
from .state import RunState, check_state_path, fingerprint, load_state, save_state
from .stream import Batch
from .urls import redact

TIME_KEYS = ("observation time", "source time")


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class _SinkConsumer:
    """Hands a page's events to the sink, and takes them back if the page fails."""

    def __init__(self, sink: Sink, progress: Progress) -> None:
        self.sink = sink
        self.progress = progress
        self.pages = 0
        self.in_page = 0  # events of the page in progress

    def page_started(self, head: PageHead) -> None:
        self.in_page = 0

    def page_events(self, batch: Batch) -> None:
        self.sink.write_batch(batch)
        self.in_page += batch.count
        self.progress.update(self.sink.events_written + self.in_page, self.pages)

    def page_failed(self) -> None:
        self.sink.rollback_page()
        self.in_page = 0


@dataclass
class _Position:
    """Where the committed output ends, in the hub's terms."""

    token: Optional[str]  # continues right after the last committed page; None: nothing left
    last_inserted_token: Optional[str]
    events: int = 0  # events of this run (the limit counts these)
    pages: int = 0
    more: bool = False  # the limit stopped the run with events left


def run(settings: Settings) -> int:
    """Carry out a checked command line; returns the exit code."""
    stopper = Stopper()
    stopper.install()
    progress = Progress(sys.stderr, enabled=_progress_wanted(settings))

    def on_retry(reason: str, wait: float, failures: int) -> None:
        note = f"retry {failures}/{settings.retries} in {wait:.1f} s: {reason}"
        if settings.debug:
            _say(redact(note, settings.apikey))
        progress.note(note)

    session = HubSession(settings.share, settings.apikey, timeout=settings.timeout,
                         policy=RetryPolicy(retries=settings.retries), cacert=settings.cacert,
                         trace=_say if settings.debug else None, on_retry=on_retry,
                         strict=settings.strict, max_event_size=settings.max_event_size)
    try:
        if settings.share.count:
            return _count(settings, session)
        return _Download(settings, session, progress, stopper).run()
    finally:
        session.close()
        stopper.uninstall()


def _progress_wanted(settings: Settings) -> bool:
    if settings.quiet:
        return False
    if settings.progress is not None:
        return settings.progress
    return sys.stderr.isatty()


def _url(session: HubSession, query: Query) -> str:
    pairs = query.pairs()
    return session.share.post_url + ("?" + encode_query(pairs) if pairs else "")


def _count(settings: Settings, session: HubSession) -> int:
    output = open_output(settings.output, atomic=True)
    try:
        count = session.count(_url(session, settings.query))
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


class _Download:
    """Pages into a sink, with the state file kept in step."""

    def __init__(self, settings: Settings, session: HubSession, progress: Progress,
                 stopper: Stopper) -> None:
        self.settings = settings
        self.session = session
        self.progress = progress
        self.stopper = stopper
        self.query = settings.query
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
        position = _Position(settings.token, None)
        resume_offset: Optional[int] = None
        resume_sink: Optional[dict[str, object]] = None
        if state is not None:
            if state.fingerprint != self.fingerprint:
                raise UsageError(
                    f"state file {settings.state} belongs to another command (URL, query, "
                    "format, output, --limit or --token differ): remove it or use another one"
                )
            resume_offset, resume_sink = state.output_offset, state.sink
            if state.complete and not self._continues(state):
                self._finish_completed(state)
                return ExitCode.OK
            if state.complete:  # a sync goes on from the newest event, or from the limit
                position = _Position(state.token or state.last_inserted_token,
                                     state.last_inserted_token)
            else:
                position = _Position(state.token, state.last_inserted_token, state.events,
                                     state.pages)
        append = settings.format == "jsonl" and settings.state is not None
        output = open_output(settings.output, append=append, atomic=not append,
                             resume_offset=resume_offset, durable=settings.state is not None)
        sink = make_sink(settings.format, output, projection=self.query.projection,
                         resume=resume_sink)
        if state is None and self.progress.enabled and not settings.follow:
            self._learn_total(position)
        return self._pages(sink, position)

    def _continues(self, state: RunState) -> bool:
        """Whether a finished run's JSON-lines file goes on: after the limit, or a sync."""
        return self.settings.format == "jsonl" and bool(
            state.token or self.settings.follow or self.query.sort == "_id"
        )

    def _finish_completed(self, state: RunState) -> None:
        """A finished run whose output may not have been renamed into place yet."""
        settings = self.settings
        assert settings.output is not None
        if settings.format != "jsonl" and os.path.exists(settings.output + ".part"):
            output = open_output(settings.output, resume_offset=state.output_offset)
            make_sink(settings.format, output, projection=self.query.projection,
                      resume=state.sink).finish()
        if not settings.quiet:
            _say(f"already complete ({state.events} events; state {settings.state}): "
                 "nothing to do")

    def _learn_total(self, position: _Position) -> None:
        """For the progress line: how many events the run will bring, if cheap to know."""
        if position.token is not None:
            return
        query = Query(start=self.query.start, end=self.query.end, filter=self.query.filter,
                      extra=self.query.extra)
        counter = HubSession(self.session.share.with_count(True), self.settings.apikey,
                             timeout=self.settings.timeout, policy=RetryPolicy(retries=1))
        try:
            total = counter.count(_url(counter, query))
        except HubasyncError:
            return
        finally:
            counter.close()
        limit = self.settings.limit
        self.progress.total = total if limit is None else min(total, limit)

    def _pages(self, sink: Sink, position: _Position) -> int:
        settings = self.settings
        consumer = _SinkConsumer(sink, self.progress)
        consumer.pages = position.pages
        pager = self._pager(position)
        try:
            while True:
                try:
                    result = pager.next_page(consumer)
                except QueryRejected as error:
                    if not (error.invalid_token and settings.recover):
                        raise
                    pager = self._recover(sink, position)
                    continue
                if result is not None:
                    self._commit(sink, pager, position, consumer)
                if not pager.done:
                    continue
                if not settings.follow:
                    break
                self._caught_up(sink, pager, position, result is not None and result.events > 0)
                self.progress.note("up to date")
                time.sleep(settings.interval)
                pager = self._pager(position)
            with self.stopper.critical():
                sink.finish()
                self._save(sink, position, complete=True)
        except Interrupted as stop:
            return self._stopped(sink, position, stop)
        except HubasyncError as error:
            return self._failed(sink, position, error)
        finally:
            pager.close()
        self.progress.update(sink.events_written, position.pages, force=True)
        self.progress.clear()
        if position.more and position.token:
            print(position.token, file=sys.stderr, flush=True)
        return ExitCode.OK

    def _pager(self, position: _Position) -> Pager:
        limit = self.settings.limit
        remaining = None if limit is None else max(0, limit - position.events)
        pager = Pager(self.session, self.query, limit=remaining, token=position.token)
        if remaining == 0:
            pager.done = True
        return pager

    def _commit(self, sink: Sink, pager: Pager, position: _Position,
                consumer: _SinkConsumer) -> None:
        with self.stopper.critical():
            sink.commit_page()
            position.events += consumer.in_page
            position.pages += 1
            if pager.last_inserted_token:
                position.last_inserted_token = pager.last_inserted_token
            if not pager.done:
                position.token = pager.token
            else:
                position.token = pager.more_token
                position.more = pager.more_token is not None
            self._save(sink, position, complete=False)
        consumer.pages = position.pages
        consumer.in_page = 0
        self.progress.update(sink.events_written, position.pages)

    def _caught_up(self, sink: Sink, pager: Pager, position: _Position,
                   got_events: bool) -> None:
        """In follow mode, go on from the newest inserted event."""
        if pager.last_inserted_token:
            position.token = pager.last_inserted_token
        elif got_events:
            raise ProtocolError("the hub sent no X-Last-Inserted-Token: cannot follow")
        position.events = 0
        with self.stopper.critical():
            self._save(sink, position, complete=False)

    def _recover(self, sink: Sink, position: _Position) -> Pager:
        """The stored token is invalid: start again from the time of the last event written."""
        start = self._last_event_time()
        if start is None:
            raise UsageError("--recover: no event with a time was written yet; remove the "
                             "state file to start over")
        self.query = dataclasses.replace(self.query, start=str(start))
        _say(f"the stored token is no longer valid: starting again from "
             f"{time.strftime('%Y-%m-%d %H:%M:%SZ', time.gmtime(start))}, the time of the last "
             "event written (events from that time on may be written again)")
        position.token = None
        with self.stopper.critical():
            self._save(sink, position, complete=False)
        return self._pager(position)

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

    def _save(self, sink: Sink, position: _Position, *, complete: bool) -> None:
        if not self.settings.state:
            return
        save_state(self.settings.state, RunState(
            fingerprint=self.fingerprint,
            token=position.token,
            output_offset=sink.offset,
            events=position.events,
            pages=position.pages,
            complete=complete,
            last_inserted_token=position.last_inserted_token,
            sink=sink.resume_info(),
        ))

    def _close_early(self, sink: Sink) -> None:
        try:
            sink.rollback_page()
            sink.abort()
        except OutputError as error:
            _say(str(error))

    def _stopped(self, sink: Sink, position: _Position, stop: Interrupted) -> int:
        self._close_early(sink)
        self.progress.clear()
        if self.settings.follow:
            if not self.settings.quiet:
                _say(f"{stop}: {sink.events_written} events written")
            return ExitCode.OK
        _say(str(stop))
        if position.token:
            print(position.token, file=sys.stderr, flush=True)
        return ExitCode.INTERRUPTED

    def _failed(self, sink: Sink, position: _Position, error: HubasyncError) -> int:
        if self.settings.debug:
            traceback.print_exception(type(error), error, error.__traceback__)
        self._close_early(sink)
        self.progress.clear()
        message = str(error)
        if (isinstance(error, QueryRejected) and error.invalid_token and position.token
                and self.settings.state):
            hint = ("run again with --recover to start from the time of the last event "
                    "written, or " if self.settings.format == "jsonl" else "")
            message += (f" (the token in {self.settings.state} can no longer be continued: "
                        f"{hint}remove the state file to start over)")
        _say(redact(message, self.settings.apikey))
        if position.token and not isinstance(error, (OutputError, QueryRejected)):
            print(position.token, file=sys.stderr, flush=True)
        return error.exit_code
