"""``hubasync sync CONFIG`` and ``hubasync status CONFIG``: the service's command line."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from typing import Any, List, NoReturn, Sequence, Tuple

from hubasync.errors import ExitCode, HubasyncError, OutputError, UsageError
from hubasync.files.lock import lock_file
from hubasync.run.stopping import REOPEN_SIGNALS, SERVICE_STOP_SIGNALS, SignalFlags
from hubasync.service.check import check_config
from hubasync.service.config import ServiceConfig, load_config, prepare_directory
from hubasync.service.log import LOG_FORMATS, ServiceLog
from hubasync.service.metrics import MetricsServer, ServiceMetrics
from hubasync.service.scheduler import Service
from hubasync.service.status import (
    StatusRow,
    UnreadableStatus,
    load_status,
    render_table,
    stale_after,
)
from hubasync.version import PROG

SYNC_DESCRIPTION = """\
Follow every share of CONFIG (a TOML file, see docs/service.md) as --follow does: insertion
order, a state per share, each event written exactly once, until SIGINT or SIGTERM stops it
between pages (exit 0). A share's file moved away (logrotate) is noticed at its next page, which
starts a new file at its path; SIGHUP is logged and never stops it. With --once: one catch-up
pass of every share, then exit."""

SYNC_EPILOG = """\
exit codes:
  0    stopped by SIGINT/SIGTERM; with --once: every share caught up; with --check: all is well
  1    internal error: the service could no longer follow every share (a bug; systemd
       restarts it)
  2    the config is not usable, or a share's files belong to another command (nothing was
       sent); with --check: any problem
  75   another hubasync holds the config or a share's state: try again later
  else with --once: the exit code of the first failing share, in config order (3 key refused,
       4 share not found, 5 query rejected, 6 hub or network, 7 output)
"""

STATUS_DESCRIPTION = """\
One row per share of CONFIG, read from the status records the service keeps beside the states:
health, events written, last success, how far behind, last error. A record that cannot be read
or is corrupt gives its share the health "unreadable" and, as its last error, why; the other
shares are shown as usual. Nothing is sent; the keys are read, when this user can, only to
take them out of what is shown; control characters in a record are shown escaped (\\x1b)."""

STATUS_EPILOG = """\
exit codes:
  0    every share is healthy
  2    the config is not usable
  6    a share is failing (its last turn failed) or stale (no success for 3 intervals, and at
       least 60 s, or never run: no record yet)
  7    a share's status record is unreadable (not a regular file, over 1 MiB, or corrupt:
       remove it, the service writes a new one); wins over 6
"""


class _Parser(argparse.ArgumentParser):
    """One-line errors; options matched whole, never by abbreviation."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def sync_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} sync", description=SYNC_DESCRIPTION, epilog=SYNC_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", metavar="CONFIG", help="the service's TOML config")
    parser.add_argument("--once", action="store_true",
                        help="one catch-up pass of every share, then exit")
    parser.add_argument("--check", action="store_true",
                        help="check the config, its keys, its directory and each share (its "
                             "files, and one count query to its hub), one line a share; write "
                             "nothing; exit 2 on any problem")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="logfmt",
                        help="logfmt (default) or json, one line per notable event")
    parser.add_argument("--debug", action="store_true", help="log more, tracebacks included")
    return parser


def status_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=f"{PROG} status", description=STATUS_DESCRIPTION,
                     epilog=STATUS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", metavar="CONFIG", help="the service's TOML config")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an internal error (a bug: please report it)")
    return parser


FILES_PER_SHARE = 4  # two locks, a kept-alive connection, and one more while a page is sent
FILES_SPARE = 64
FILES_TO_DELIVER = 2  # a share with destinations reads its file, and a moved one still read
FILES_PER_DESTINATION = 2  # its connection, and one more while it reconnects
FILES_PER_KAFKA_BROKER = 4  # librdkafka's connection and wakeup descriptors (13 for 3 brokers)


def files_needed(config: ServiceConfig) -> int:
    """About how many files the service holds open at most: each share's, and its
    destinations' (a Kafka producer holds a few per broker)."""
    needed = FILES_SPARE
    for share in config.shares:
        needed += FILES_PER_SHARE + (FILES_TO_DELIVER if share.destinations else 0)
        for _, destination in share.destinations:
            needed += FILES_PER_DESTINATION + (FILES_PER_KAFKA_BROKER * len(destination.brokers)
                                               if destination.kind == "kafka" else 0)
    return needed


def ensure_file_limit(shares: int, needed: int) -> None:
    """Raise the soft limit of open files as far as ``needed`` (and allowed) for ``shares``;
    refuse the config, before any request, if even the hard limit is too low."""
    try:
        import resource
    except ImportError:  # not on this platform: nothing to raise
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise UsageError(f"{shares} shares need about {needed} open files, and this process may "
                         f"open at most {hard} (ulimit -n; LimitNOFILE= in a systemd unit): "
                         "raise it, or split the shares over several configs")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    except (OSError, ValueError) as error:
        raise UsageError(f"{shares} shares need about {needed} open files, and the limit "
                         f"({soft}, ulimit -n) cannot be raised: {error}") from None


def sync(argv: Sequence[str]) -> int:
    args = sync_parser().parse_args(argv)
    config = load_config(args.config)
    if args.check:
        return check_config(config, sys.stdout)
    prepare_directory(config)
    ensure_file_limit(len(config.shares), files_needed(config))
    log = ServiceLog(log_format=args.log_format, secrets=config.secrets, debug=args.debug)
    metrics = ServiceMetrics()
    service = Service(config, log=log, once=args.once, metrics=metrics, debug=args.debug)
    flags = SignalFlags(stop_signals=SERVICE_STOP_SIGNALS, reopen_signals=REOPEN_SIGNALS)
    server = None
    with ExitStack() as held:  # one service per config, one writer per share: before binding
        held.enter_context(lock_file(config.path, what="config"))
        service.claim()
        if config.metrics is not None:
            host, port = config.metrics
            server = MetricsServer(metrics,
                                   f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
            server.start()
            held.callback(server.stop)
            bound = server.address
            log.info("metrics served", address=f"http://{bound[0]}:{bound[1]}/metrics")
        flags.install()
        held.callback(flags.uninstall)
        try:
            return service.run(flags)
        finally:
            log.info("service stopped")


def status(argv: Sequence[str]) -> int:
    args = status_parser().parse_args(argv)
    config = load_config(args.config, keys=False)
    now = time.time()
    rows: List[StatusRow] = []
    for share in config.shares:
        try:
            rows.append(load_status(share.status, share.name))
        except OutputError as error:  # that share's row says why; the others are shown
            rows.append(UnreadableStatus(share.name, str(error)))
    render_table(rows, now, config.interval, sys.stdout, _secrets_if_readable(args.config, config))
    sys.stdout.flush()
    unhealthy = [(row.share, row.health(now, config.interval)) for row in rows
                 if row.health(now, config.interval) != "ok"]
    if unhealthy:
        names = ", ".join(f"{share} ({health})" for share, health in unhealthy)
        print(f"{PROG}: unhealthy: {names} (stale after {stale_after(config.interval):g} s "
              "without a success)", file=sys.stderr)
        if any(health == "unreadable" for _, health in unhealthy):
            return ExitCode.OUTPUT
        return ExitCode.UNAVAILABLE
    return ExitCode.OK


def _secrets_if_readable(path: str, config: ServiceConfig) -> Tuple[str, ...]:
    """The config's secrets with its keys when this user can read them (a record written before
    save_status redacted may hold one), else the proxy's alone: only to redact what is shown."""
    try:
        return load_config(path).secrets
    except HubasyncError:
        return config.secrets


COMMANDS = {"sync": sync, "status": status}


def run_command(name: str, argv: Sequence[str]) -> int:
    """Run ``hubasync NAME ...``; errors are raised as HubasyncError for the caller to print."""
    return COMMANDS[name](argv)
