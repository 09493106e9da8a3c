"""``hubasync sync``: many shares followed by one process, each exactly once, none holding back
the others.

Each share is a :class:`ShareFollower`: a :class:`~hubasync.run.resumable.ResumableRun` (its
output and state, as the command's) fed by its own session, and its status record. The
:class:`Service` gives shares *turns* on at most ``concurrency`` worker threads. A turn drives
the share's steps (:func:`~hubasync.run.pipeline.fetch_pages`) for at most ``turn_seconds``,
and ends sooner whenever the share would only wait: a job still pending, a ``Retry-After``, a
retry backing off, an answer or a body slow to come. The share then goes back in line, due when
its wait is over, and the worker takes the next share: a hostile hub holds a worker no longer
than any other, however long it makes its share wait. A share caught up comes back after
``interval``; a share whose turn failed after a backoff of its own (``interval`` doubling up to
:data:`BACKOFF_CEILING`), while the others go on.

Nothing a share does can stop the service: every failure of a turn (a hub's error, a file's, or
a bug: ``internal``) is caught, logged, counted and shown by ``hubasync status``, and the share
backs off. A worker that dies anyway ends the service with an error, so that systemd restarts it.

Threads, and who may touch what:

- The main thread watches the signal flags (:class:`~hubasync.run.stopping.SignalFlags`) and
  the workers; it alone turns a signal into :meth:`Service.stop` (or, SIGHUP, a log line: each
  share checks at every page whether its file was moved away), and refreshes the "behind"
  gauges. When the workers are done, it closes every share.
- A worker takes a due share from the line (under ``_line``, a condition), and is the only
  thread that touches that share (its run, session, steps and status) until it puts it back.
- ``stopping`` (an Event) is read by the workers between steps. The metrics and the log have
  locks of their own.
"""

from __future__ import annotations

import heapq
import threading
import time
import traceback
from typing import Callable, Generator, List, Optional, Tuple

from hubasync.core.retry import RetryPolicy
from hubasync.errors import Busy, ClaimError, ExitCode, HubasyncError, Interrupted
from hubasync.files.leftovers import ListedOnce, Listing, list_folder
from hubasync.run.delivering import Report
from hubasync.run.pipeline import Committed, Step
from hubasync.run.resumable import ResumableRun
from hubasync.run.settings import RunSettings
from hubasync.run.stopping import WATCH_INTERVAL, SignalFlags, StoppableClock, StopRequest
from hubasync.service.config import ServiceConfig, ShareConfig
from hubasync.service.log import ServiceLog
from hubasync.service.metrics import ServiceMetrics, error_kind
from hubasync.service.status import (
    ShareStatus,
    behind_seconds,
    load_status,
    remove_status_leftovers,
    save_status,
)
from hubasync.transport.http import hub_transport
from hubasync.transport.interface import Transport
from hubasync.transport.session import HubSession

TURN_SECONDS = 5.0
BACKOFF_CEILING = 3600.0
SHORT_WAIT = 0.05  # a wait this short is slept through on the worker rather than given back
SUSPEND_AFTER = 2.0  # a share due back later than this lets go of its output meanwhile
ABORT_GRACE = 3.0  # seconds a stopping worker gets before its share's connections are broken

TransportFactory = Callable[[ShareConfig, RunSettings], Transport]


def backoff(failures: int, interval: float) -> float:
    """Seconds before a share whose last ``failures`` turns failed is tried again."""
    ceiling = max(interval, BACKOFF_CEILING)
    return min(ceiling, interval * 2.0 ** min(failures - 1, 30))


def share_settings(config: ServiceConfig, share: ShareConfig, once: bool = False) -> RunSettings:
    """What a share's run is: followed in insertion order (``once``: one pass, which, as the
    command's, waits for its destinations, giving one up after its retries), written in
    place."""
    return RunSettings(share=share.url, apikey=share.apikey, query=share.query,
                       format=share.format, output=share.output, state=share.state,
                       follow=not once, bounds=share.bounds, cacert=share.cacert,
                       proxy=config.proxy, in_place=True, destinations=share.destinations,
                       max_lag=share.max_lag)


def hub_transport_for(share: ShareConfig, settings: RunSettings) -> Transport:
    """The real transport of a share: kept-alive connections to its hub."""
    return hub_transport(share.url, share.apikey, timeout=settings.bounds.timeout,
                         cacert=share.cacert, proxy=settings.proxy)


class ShareFollower:
    """One share, followed in turns. Touched by one thread at a time (see the module)."""

    def __init__(self, config: ShareConfig, service: Service, settings: RunSettings,
                 transport: Transport) -> None:
        self.config = config
        self.name = config.name
        self.service = service
        self.settings = settings
        bounds = self.settings.bounds
        self.session = HubSession(transport, policy=RetryPolicy(retries=bounds.retries),
                                  clock=service.clock, job_timeout=bounds.job_timeout,
                                  page_timeout=bounds.page_timeout,
                                  max_event_size=bounds.max_event_size)
        self.run = ResumableRun(self.settings, notice=self._notice,
                                on_delivery=self._delivered)
        self.status = ShareStatus(config.name)
        self.status_read = False  # the record was read: it is this share's to replace
        self.claimed = False
        self._run_claimed = False
        self._opened = False
        self._steps: Optional[Generator[Step, None, None]] = None
        self._pass_started = 0.0
        self._pass_events = 0
        self._pass_pages = 0
        self._events_before = 0  # the run's count of events at its last commit

    def _notice(self, message: str) -> None:
        self.service.log.info(message, self.name)

    def _delivered(self, report: Report) -> None:
        """A batch went to a destination: the metrics and the status record say so. The
        record is saved at once when the destination fails or is back (a pass held back by it
        may last long); else when the pass ends, as usual."""
        self.service.metrics.delivery(self.name, report.destination, sent=report.sent,
                                      acknowledged=report.acknowledged, dead=report.dead,
                                      retried=report.retried, lag=report.lag,
                                      last_ack=report.last_ack)
        entry = self.status.destinations.setdefault(report.destination, {
            "acknowledged": 0, "dead": 0, "retries": 0, "lag": 0, "last_ack": None,
            "last_error": None})
        failing = entry["last_error"] is not None
        entry["acknowledged"] += report.acknowledged
        entry["dead"] += report.dead
        entry["retries"] += 1 if report.retried else 0
        entry["lag"] = report.lag
        entry["last_ack"] = report.last_ack or entry["last_ack"]
        entry["last_error"] = report.error
        if report.error is not None or failing:
            self.record()
        if report.error is not None:
            self.service.log.warning("delivery failed", self.name,
                                     destination=report.destination, error=report.error,
                                     lag=report.lag)
        elif report.dead:
            self.service.log.warning("dead letters", self.name, destination=report.destination,
                                     events=report.dead)

    def claim(self, listing: Listing = list_folder) -> None:
        """Its files, locked and checked (raises what refuses them), and its status record;
        ``listing`` lists the folders searched for temporary files a killed run left."""
        if self.claimed:
            return
        if not self.status_read:  # first: a share that cannot start says why in its record
            self.status = load_status(self.config.status, self.name)
            self.status_read = True
            if self.status.started is None:
                self.status.started = time.time()
        if not self._run_claimed:
            self.run.claim(listing)
            self._run_claimed = True
            remove_status_leftovers(self.config.status, listing)  # the share's lock is held
        self.claimed = True

    def turn(self, until: float) -> Optional[float]:
        """Drive the share until the turn is over (monotonic ``until``) or it would only wait.

        Returns the monotonic time it is due again, or None when its pass is over (caught up).
        """
        service = self.service
        self.claim()
        if not self._opened:
            self.run.open()
            self._opened = True
        if self._steps is None:
            self._steps = self.run.pages(self.session, attempts=self.session.attempts)
            self._pass_started = time.monotonic()
            self._pass_events = self._pass_pages = 0
            self._events_before = self.run.cursor.events
        steps = self._steps
        while True:
            if service.stopping.is_set():
                raise Interrupted("the service is stopping")
            try:
                step = next(steps)
            except StopIteration:
                self._steps = None
                return None
            now = time.monotonic()
            if isinstance(step, Committed):
                self._committed(step)
                if now >= until:
                    return now
            elif step.until is None:  # waiting for the hub's bytes: another share may go
                if now >= until:
                    return now
            elif step.until - now > SHORT_WAIT:
                return step.until
            elif step.until > now:
                service.clock.sleep(step.until - now)

    def _committed(self, step: Committed) -> None:
        events = step.cursor.events - self._events_before
        self._events_before = step.cursor.events
        self._pass_events += events
        self._pass_pages += 1
        self.status.events += events
        self.status.pages += 1
        self.service.metrics.page(self.name, events)
        if step.cursor.done:
            self.status.caught_up = time.time()
        deliveries = self.run.deliveries
        if deliveries is not None:  # a destination backing off reports nothing meanwhile
            failing = False
            for destination, lag in deliveries.lags().items():
                self.service.metrics.lag.set(lag, share=self.name, destination=destination)
                entry = self.status.destinations.get(destination)
                if entry is not None:
                    entry["lag"] = lag
                    failing = failing or entry["last_error"] is not None
            if failing:
                self.record()

    def caught_up(self) -> None:
        """The pass is over: record it, start the next one, let go of the output."""
        seconds = time.monotonic() - self._pass_started
        self.service.log.info("pass done", self.name, events=self._pass_events,
                              pages=self._pass_pages, seconds=round(seconds, 3))
        self.run.suspend()  # the state says the pass is complete
        self.run.next_pass()

    def succeeded(self) -> None:
        now = time.time()
        self.status.last_success = now
        self.status.failures = 0
        self.service.metrics.success(self.name, now)
        self.record()

    def failed(self, error: BaseException, message: str) -> None:
        """The turn failed: drop its steps (the page in progress rolled back), leave the
        output closed and the state saying where it ends, and record why."""
        self.drop_steps()
        self.status.failures += 1
        self.status.last_error = message
        self.status.last_error_time = time.time()
        self.service.metrics.failure(self.name, error_kind(error))
        self.record()

    def drop_steps(self) -> None:
        steps, self._steps = self._steps, None
        try:
            if steps is not None:
                steps.close()
        finally:
            if self._run_claimed:
                self.run.suspend()

    def record(self) -> None:
        if not self.status_read:
            return  # a record that could not be read is not replaced
        try:
            save_status(self.config.status, self.status, self.service.config.secrets)
        except HubasyncError as error:
            self.service.log.error(str(error), self.name)

    def close(self) -> None:
        """At the end of the service: the page in progress rolled back, the output closed, the
        state saved, the files let go."""
        try:
            self.drop_steps()
            self.record()
        finally:
            self.session.close()
            self.run.release()
            self._run_claimed = False


class Service:
    """The shares of a config, followed on ``concurrency`` worker threads."""

    def __init__(self, config: ServiceConfig, *, log: ServiceLog, once: bool = False,
                 metrics: Optional[ServiceMetrics] = None, debug: bool = False,
                 turn_seconds: float = TURN_SECONDS,
                 transports: TransportFactory = hub_transport_for) -> None:
        self.config = config
        self.turn_seconds = turn_seconds
        self.log = log
        self.once = once
        self.debug = debug
        self.metrics = metrics or ServiceMetrics()
        self.stop_request = StopRequest()
        self.stopping = threading.Event()
        self.clock = StoppableClock(self.stop_request)
        self.failed: List[Tuple[str, HubasyncError]] = []
        self.followers: List[ShareFollower] = []
        for share in config.shares:
            settings = share_settings(config, share, once)
            follower = ShareFollower(share, self, settings, transports(share, settings))
            self.stop_request.on_abort(follower.session.transport.abort)
            self.stop_request.on_abort(follower.run.abort_deliveries)
            self.followers.append(follower)
        self._startup_failures: List[Tuple[ShareFollower, HubasyncError]] = []
        self._line = threading.Condition()
        self._due: List[Tuple[float, int, ShareFollower]] = []
        self._running = 0
        self._crashed: Optional[BaseException] = None
        self._behind_at = 0.0  # when the "behind" gauges were last refreshed

    # -- from the main thread ------------------------------------------------------------------

    def claim(self) -> None:
        """Every share's files, before any request. A file that belongs to another command, or
        to no one this config knows, refuses the whole config (:class:`ClaimError`, exit 2), as
        does a lock another process holds (exit 75). Anything else that keeps one share from
        starting (a state or a status record that cannot be read) fails that share only: it is
        logged, shown by ``hubasync status``, and tried again after its backoff."""
        listing = ListedOnce()  # the shares' files are side by side: one listing for all
        for follower in self.followers:
            self.metrics.add_share(follower.name)
            for destination, _ in follower.config.destinations:
                self.metrics.add_destination(follower.name, destination)
            try:
                follower.claim(listing)
            except (ClaimError, Busy):
                raise
            except HubasyncError as error:
                self.log.error("cannot start", follower.name, error=str(error))
                self._startup_failures.append((follower, error))

    def stop(self, reason: str = "a request") -> None:
        """Stop: each share between two steps; waits end at once."""
        self.stop_request.set(reason)
        self.stopping.set()
        with self._line:
            self._line.notify_all()

    def run(self, flags: Optional[SignalFlags] = None,
            on_started: Optional[Callable[[], None]] = None) -> int:
        """Follow every share until stopped (or, ``once``, until each is caught up once),
        watching ``flags`` on this (main) thread. Claim first (:meth:`claim`)."""
        now = time.monotonic()
        failed = dict((id(follower), error) for follower, error in self._startup_failures)
        for number, follower in enumerate(self.followers):
            error = failed.get(id(follower))
            due = now if error is None else self._failed(follower, error, str(error))
            if due is not None:
                self._due.append((due, number, follower))
        heapq.heapify(self._due)
        workers = [threading.Thread(target=self._work, name=f"hubasync-sync-{n}", daemon=True)
                   for n in range(min(self.config.concurrency, len(self.followers)))]
        self.log.info("service started", shares=len(self.followers),
                      concurrency=self.config.concurrency, interval=self.config.interval)
        for worker in workers:
            worker.start()
        if on_started is not None:
            on_started()
        self._watch(workers, flags)
        # Closing says goodbye to each receiver (RELP waits for the answer to its close): a
        # receiver that hangs must not hold the end, so the connections are broken after a grace.
        closing = threading.Timer(ABORT_GRACE, self.stop_request.abort)
        closing.daemon = True
        closing.start()
        try:
            for follower in self.followers:
                try:
                    follower.close()
                except HubasyncError as error:
                    self.log.error(str(error), follower.name)
        finally:
            closing.cancel()
        if self._crashed is not None:
            self.log.error(f"internal error: a worker died: {self._crashed!r} (please report "
                           "it); stopping so that the service is restarted")
            return 1
        if self.once and self.failed:
            order = [share.name for share in self.config.shares]
            first = min(self.failed, key=lambda failure: order.index(failure[0]))
            return first[1].exit_code
        return ExitCode.OK

    def _watch(self, workers: List[threading.Thread],
               flags: Optional[SignalFlags]) -> None:
        reopens = 0  # the flags count from their installation: every SIGHUP since counts
        stopped_at: Optional[float] = None
        aborted = False
        while any(worker.is_alive() for worker in workers):
            for worker in workers:
                worker.join(WATCH_INTERVAL / len(workers))
            if flags is not None:
                if flags.stop is not None and not self.stopping.is_set():
                    self.log.info("stopping", signal=flags.stop)
                    self.stop(flags.stop)
                if flags.reopens != reopens:
                    reopens = flags.reopens
                    # every page checks its file anyway: a moved one is completed at once
                    self.log.info("reopening the outputs: each share's next page goes to a "
                                  "new file if its own was moved", signal="SIGHUP")
            if self._crashed is not None and not self.stopping.is_set():
                self.stop("a worker died")
            if self.stopping.is_set():
                stopped_at = stopped_at or time.monotonic()
                if not aborted and time.monotonic() - stopped_at > ABORT_GRACE:
                    aborted = True
                    self.stop_request.abort()
            if time.monotonic() - self._behind_at >= 1.0:
                self._behind_at = time.monotonic()
                self._refresh_behind()

    def _refresh_behind(self) -> None:
        now = time.time()
        for follower in self.followers:
            behind = behind_seconds(now, follower.status)
            self.metrics.behind.set(0.0 if behind is None else behind, share=follower.name)

    # -- on the workers ------------------------------------------------------------------------

    def _take(self) -> Optional[ShareFollower]:
        with self._line:
            while not self.stopping.is_set():
                if not self._due:
                    if self.once and self._running == 0:
                        self._line.notify_all()
                        return None
                    self._line.wait(0.5)
                    continue
                due, _, follower = self._due[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._due)
                    self._running += 1
                    return follower
                self._line.wait(min(wait, 0.5))
            return None

    def _put(self, follower: ShareFollower, due: Optional[float]) -> None:
        with self._line:
            self._running -= 1
            if due is not None:
                number = self.followers.index(follower)
                heapq.heappush(self._due, (due, number, follower))
            self._line.notify_all()

    def _work(self) -> None:
        try:
            while True:
                follower = self._take()
                if follower is None:
                    return
                due: Optional[float] = None
                try:
                    due = self._turn(follower)
                finally:
                    self._put(follower, due)
        except BaseException as error:  # a bug outside any share's turn: the service ends
            self._crashed = error

    def _turn(self, follower: ShareFollower) -> Optional[float]:
        """One turn of a share; returns when it is due again (None: not in this run)."""
        try:
            due = follower.turn(time.monotonic() + self.turn_seconds)
            if due is not None:
                if due - time.monotonic() > SUSPEND_AFTER:
                    follower.run.suspend()
                return due
            follower.caught_up()
            follower.succeeded()
        except Interrupted:
            return None
        except HubasyncError as error:
            return self._failed(follower, error, str(error))
        except Exception as error:  # a bug: this share backs off, the others go on
            if self.debug:
                self.log.error("".join(traceback.format_exception(
                    type(error), error, error.__traceback__)), follower.name)
            wrapped = HubasyncError(f"internal error: {error!r} (please report it)")
            return self._failed(follower, error, str(wrapped), wrapped)
        self.log.debug("caught up", follower.name, events=follower.status.events)
        return None if self.once else time.monotonic() + self.config.interval

    def _failed(self, follower: ShareFollower, error: BaseException, message: str,
                reported: Optional[HubasyncError] = None) -> Optional[float]:
        try:
            follower.failed(error, message)
        except Exception as second:  # closing after a failure failed too: still one share
            self.log.error(f"cannot close after a failure: {second!r}", follower.name)
        exit_code = reported.exit_code if reported else getattr(error, "exit_code", 1)
        if self.once:
            self.failed.append((follower.name, reported or _as_error(error)))
            self.log.error("pass failed", follower.name, kind=error_kind(error), error=message,
                           exit_code=exit_code)
            return None
        delay = backoff(follower.status.failures, self.config.interval)
        self.log.warning("pass failed", follower.name, kind=error_kind(error), error=message,
                         retry_in=round(delay, 1), failures=follower.status.failures)
        return time.monotonic() + delay


def _as_error(error: BaseException) -> HubasyncError:
    return error if isinstance(error, HubasyncError) else HubasyncError(repr(error))
