"""``hubasync sync``: many shares followed by one process, each exactly once, none holding back
the others.

Each share is a :class:`ShareFollower`: its own session (kept-alive connections, its own poll
clock), output, state and status record. The :class:`Service` gives at most ``concurrency``
shares a *turn* at a time on its worker threads; a turn runs the one run loop
(:func:`hubasync.pipeline.fetch_pages`) for at most :data:`TURN_SECONDS`, then the share goes back
in line, so a share with millions of events does not starve the others. A share caught up comes
back after ``interval``; a share whose turn failed comes back after a backoff of its own
(``interval`` doubling up to :data:`BACKOFF_CEILING`), while the others go on. ``Retry-After``
and 429 slow only the share that got them (its own retry budget, on its own worker).

Stopping (SIGINT/SIGTERM) sets a flag that each worker checks between pages, and that cuts any
wait short; a page being written is committed or rolled back as always, so ``kill -9`` loses and
repeats nothing either. SIGHUP (after logrotate) makes each share's next page go to a new file
at its configured path; a share also notices by itself when its file was moved.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
import traceback
from typing import Callable, List, Optional, Tuple

from hubasync.core.cursor import Cursor
from hubasync.core.params import query_url
from hubasync.core.retry import RetryPolicy
from hubasync.core.stalls import StallDetector
from hubasync.errors import ExitCode, HubasyncError, Interrupted, OutputError, UsageError
from hubasync.events.formats import FormatWriter, format_writer
from hubasync.files.output import open_output
from hubasync.files.state import RunState, fingerprint, load_state, save_state
from hubasync.run.pipeline import fetch_pages
from hubasync.run.recorder import Recorder, cursor_from_state, run_state
from hubasync.run.stopping import Stopper
from hubasync.service.config import ServiceConfig, ShareConfig
from hubasync.service.log import ServiceLog
from hubasync.service.metrics import ServiceMetrics
from hubasync.service.status import load_status, save_status
from hubasync.transport.http import hub_transport
from hubasync.transport.session import HubSession

TURN_SECONDS = 5.0
BACKOFF_CEILING = 3600.0


class _StoppableClock:
    """The system's monotonic clock, whose sleeps end at once when the service stops."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self._stop.wait(seconds):
            raise Interrupted("the service is stopping")
        if self._stop.is_set():
            raise Interrupted("the service is stopping")


def backoff(failures: int, interval: float) -> float:
    """Seconds before a share whose last ``failures`` turns failed is tried again."""
    ceiling = max(interval, BACKOFF_CEILING)
    return min(ceiling, interval * 2.0 ** min(failures - 1, 30))


class ShareFollower:
    """One share, followed in turns: each turn resumes from its state and ends between pages."""

    def __init__(self, config: ShareConfig, service: Service) -> None:
        self.config = config
        self.name = config.name
        self.service = service
        self.status = load_status(config.status, config.name)
        self.fingerprint = fingerprint(config.url.display(), config.query.pairs(),
                                       config.format, os.path.abspath(config.output), None, None)
        bounds = config.bounds
        transport = hub_transport(config.url, config.apikey, timeout=bounds.timeout,
                                  cacert=config.cacert, proxy=service.config.proxy)
        self.session = HubSession(transport, policy=RetryPolicy(retries=bounds.retries),
                                  clock=service.clock, job_timeout=bounds.job_timeout,
                                  page_timeout=bounds.page_timeout,
                                  max_event_size=bounds.max_event_size)
        self._opened: Optional[Tuple[int, int]] = None

    def close(self) -> None:
        self.session.close()

    def turn(self, until: float) -> bool:
        """Pages into the output until caught up (True), or the turn is over (False)."""
        config = self.config
        state = load_state(config.state)
        if state is not None and state.fingerprint != self.fingerprint:
            raise UsageError(f"state file {config.state} was kept for another URL, query or "
                             "format of this share: move it away to start over")
        cursor = Cursor() if state is None else cursor_from_state(state, None)
        if cursor.done:
            cursor = cursor.next_pass()
        writer = self._open(state)
        recorder = Recorder(writer, self._save, Stopper(), cursor)
        reopen = self.service.reopen_generation
        try:
            self._save(cursor, writer)
            pages = fetch_pages(self.session, self._url, cursor, recorder,
                                attempts=self.session.attempts,
                                stalls=StallDetector(config.bounds.max_empty_pages))
            before = cursor
            for after in pages:
                self._committed(after, before)
                before = after
                if after.done:
                    pages.close()
                    return True
                if (self.service.stopping.is_set() or time.monotonic() >= until
                        or reopen != self.service.reopen_generation or self._moved()):
                    pages.close()
                    return False
            return recorder.cursor.done
        finally:
            writer.close(complete=False)
            self._save(recorder.cursor, writer)  # where the output ends, closed cleanly

    def _url(self, cursor: Cursor) -> str:
        return query_url(self.config.url, self.config.query, limit=cursor.page_limit,
                         token=cursor.token)

    def _open(self, state: Optional[RunState]) -> FormatWriter:
        config = self.config
        offset = None if state is None else state.output_offset
        resume = None if state is None else state.writer
        if offset is not None and _empty_or_missing(config.output):
            if offset:
                self.service.log.info("output file new or moved away: writing a new one",
                                      self.name, path=config.output)
            offset, resume = None, None
        elif offset is None and config.format != "jsonl" and not _empty_or_missing(
                config.output):
            raise OutputError(f"{config.output} exists but has no state beside it: a "
                              f"{config.format} file cannot be continued without one; move it "
                              "away")
        fresh = offset is None
        output = open_output(config.output, append=config.format == "jsonl", atomic=False,
                             resume_offset=offset, durable=True,
                             resume_tail=None if fresh or state is None else state.output_tail,
                             resume_end=None if fresh or state is None else state.output_end)
        stat = os.stat(config.output)
        self._opened = (stat.st_dev, stat.st_ino)
        return format_writer(config.format, output, projection=config.query.projection,
                         resume=resume)

    def _moved(self) -> bool:
        try:
            stat = os.stat(self.config.output)
        except OSError:
            return True
        return (stat.st_dev, stat.st_ino) != self._opened

    def _save(self, cursor: Cursor, writer: FormatWriter) -> None:
        save_state(self.config.state, run_state(self.fingerprint, cursor, writer))

    def _committed(self, after: Cursor, before: Cursor) -> None:
        events = after.events - before.events
        self.status.events += events
        self.status.pages += 1
        self.service.metrics.page(self.name, events)
        if after.done:
            self.status.caught_up = time.time()

    def succeeded(self, caught_up: bool) -> None:
        now = time.time()
        self.status.last_success = now
        self.status.failures = 0
        self.service.metrics.success(self.name, now)
        if not caught_up:
            self.service.metrics.behind.set(
                now - (self.status.caught_up or self.status.started or now), share=self.name)
        self._record()

    def failed(self, error: BaseException) -> None:
        self.status.failures += 1
        self.status.last_error = str(error) or type(error).__name__
        self.status.last_error_time = time.time()
        self.service.metrics.failure(self.name, type(error).__name__)
        self._record()

    def _record(self) -> None:
        try:
            save_status(self.config.status, self.status)
        except HubasyncError as error:
            self.service.log.error(str(error), self.name)


def _empty_or_missing(path: str) -> bool:
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True


class Service:
    """The shares of a config, followed on ``concurrency`` worker threads."""

    def __init__(self, config: ServiceConfig, *, log: ServiceLog, once: bool = False,
                 metrics: Optional[ServiceMetrics] = None, debug: bool = False,
                 turn_seconds: float = TURN_SECONDS) -> None:
        self.config = config
        self.turn_seconds = turn_seconds
        self.log = log
        self.once = once
        self.debug = debug
        self.metrics = metrics or ServiceMetrics()
        self.stopping = threading.Event()
        self.clock = _StoppableClock(self.stopping)
        self.reopen_generation = 0
        self.failed: List[Tuple[str, HubasyncError]] = []
        self._lock = threading.Condition()
        self._due: List[Tuple[float, int, ShareFollower]] = []
        self._running = 0
        self._followers: List[ShareFollower] = []

    def stop(self) -> None:
        """Stop between pages (from a signal handler or another thread)."""
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()

    def reopen(self) -> None:
        """After a rotation: each share's next page goes to a new file at its path."""
        self.reopen_generation += 1

    def run(self, on_started: Optional[Callable[[], None]] = None) -> int:
        """Follow every share until stopped (or, ``once``, until each is caught up once)."""
        now = time.monotonic()
        for number, share in enumerate(self.config.shares):
            follower = ShareFollower(share, self)
            if follower.status.started is None:
                follower.status.started = time.time()
            self._followers.append(follower)
            self.metrics.add_share(share.name)
            self._due.append((now, number, follower))
        heapq.heapify(self._due)
        workers = [threading.Thread(target=self._work, name=f"hubasync-sync-{n}", daemon=True)
                   for n in range(min(self.config.concurrency, len(self._followers)))]
        self.log.info("service started", shares=len(self._followers),
                      concurrency=self.config.concurrency, interval=self.config.interval)
        for worker in workers:
            worker.start()
        if on_started is not None:
            on_started()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.2)
        for follower in self._followers:
            follower.close()
        if self.once and self.failed:
            order = [share.name for share in self.config.shares]
            first = min(self.failed, key=lambda failure: order.index(failure[0]))
            return first[1].exit_code
        return ExitCode.OK

    def _take(self) -> Optional[ShareFollower]:
        with self._lock:
            while not self.stopping.is_set():
                if not self._due:
                    if self.once and self._running == 0:
                        self._lock.notify_all()
                        return None
                    self._lock.wait(0.5)
                    continue
                due, _, follower = self._due[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._due)
                    self._running += 1
                    return follower
                self._lock.wait(min(wait, 0.5))
            return None

    def _put(self, follower: ShareFollower, delay: Optional[float]) -> None:
        with self._lock:
            self._running -= 1
            if delay is not None:
                number = self._followers.index(follower)
                heapq.heappush(self._due, (time.monotonic() + delay, number, follower))
            self._lock.notify_all()

    def _work(self) -> None:
        while True:
            follower = self._take()
            if follower is None:
                return
            self._put(follower, self._turn(follower))

    def _turn(self, follower: ShareFollower) -> Optional[float]:
        """One turn of a share; returns when it is due again (None: not in this run)."""
        interval = self.config.interval
        try:
            caught_up = follower.turn(time.monotonic() + self.turn_seconds)
        except Interrupted:
            return None
        except HubasyncError as error:
            return self._failed(follower, error)
        except Exception as error:  # a bug: the share stops, the others go on
            if self.debug:
                self.log.error("".join(traceback.format_exception(
                    type(error), error, error.__traceback__)), follower.name)
            wrapped = HubasyncError(f"internal error: {error!r} (please report it)")
            return self._failed(follower, wrapped)
        follower.succeeded(caught_up)
        if caught_up:
            self.log.debug("caught up", follower.name, events=follower.status.events)
            return None if self.once else interval
        return 0.0

    def _failed(self, follower: ShareFollower, error: HubasyncError) -> Optional[float]:
        follower.failed(error)
        if self.once:
            self.failed.append((follower.name, error))
            self.log.error(str(error), follower.name, exit_code=error.exit_code)
            return None
        delay = backoff(follower.status.failures, self.config.interval)
        self.log.warning(str(error), follower.name, retry_in=round(delay, 1),
                         failures=follower.status.failures)
        return delay

