"""The ``hubasync`` command line: options, checks before any request, one-line errors.

Everything a user can get wrong on the command line is found here, before the network is
touched; what happens after is :mod:`hubasync.download`'s job. Every failure ends in one
line on stderr and a documented exit code; ``--debug`` adds the traceback and a request trace.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence

from hubasync.cli.download import run
from hubasync.cli.messages import keep_secret, say, say_traceback
from hubasync.core.access import check_key_and_origin
from hubasync.core.bounds import ALL as BOUNDS
from hubasync.core.bounds import (
    DEFAULTS,
    JOB_TIMEOUT,
    MAX_EMPTY_PAGES,
    MAX_EVENT_SIZE,
    MAX_LAG,
    PAGE_TIMEOUT,
    RETRIES,
    TIMEOUT,
    WEEK,
    Bound,
    Bounds,
    Number,
    parse_duration,
)
from hubasync.core.params import (
    Query,
    check_sendable,
    parse_param,
    parse_projection,
    relative_time,
)
from hubasync.core.urls import ShareUrl, parse_share_url
from hubasync.delivery import parse_destination
from hubasync.errors import ExitCode, HubasyncError, OutputError, UsageError, one_line
from hubasync.events.formats import FORMATS
from hubasync.files.output import resolve_output
from hubasync.run.settings import RunSettings
from hubasync.transport.proxy import parse_proxy_url, secrets_of
from hubasync.transport.tls import check_cacert
from hubasync.version import PROG, __version__

SERVICE_COMMANDS = ("sync", "status")

DESCRIPTION = """\
Download events (or an event count) from an Arctic Hub share through its async API.

URL is the share's URL: https://HUB/shares/v2/async/SHARE_ID for an API share,
.../SHARE_ID/INDEX for a notification share, .../count appended for a count. URLs copied from
the hub's UI (/shares/v2/SHARE_ID?apikey=KEY, /shares/SHARE_ID) work as they are: the key is
moved into the Authorization header.

Events go to stdout as one JSON array, written page by page as they arrive; a count as
{"count": N}. When --limit stops the download with more events left, the token that continues
it is the last line of stderr."""

EPILOG = """\
exit codes:
  0    done
  1    internal error (a bug: please report it with the --debug output)
  2    usage or configuration error (bad option, bad URL, no API key, bad --cacert, a
       proxy URL that is not http://, a bad --to or its options), or the proxy refused
       its credentials (407)
  3    the hub refused the API key (401/403)
  4    share not found (404)
  5    the hub rejected the query (400: invalid inputs or token)
  6    the hub, the network or the proxy failed beyond the retries; or, not retried: a
       host name that does not resolve, https to a port that speaks plain http (or the
       reverse), no TLS version in common, an untrusted certificate, or the hub misbehaved
       past a bound (a job pending past --job-timeout, a body past --page-timeout, an
       event larger than --max-event-size, tokens that do not move the run forward); or a
       destination (--to) failed --retries times in a row, or refused the delivery for good
       (its certificate untrusted or for another name, ours refused): its position is kept
  7    the output (or a destination's dead-letter file) could not be written, or is not
       the file --state describes (or stdout is closed and there is no -o)
  75   another hubasync run is writing the same output or state: try again later
  130  interrupted (SIGINT, SIGTERM or SIGHUP); the JSON written so far stays valid

examples:
  export APIKEY=...
  hubasync https://hub.example.com/shares/v2/async/abc
  hubasync https://hub.example.com/shares/v2/async/abc/0
  hubasync https://hub.example.com/shares/v2/async/abc/count
  hubasync https://hub.example.com/shares/v2/async/abc --start=2020-10-01 --end=2020-10-07
  hubasync https://hub.example.com/shares/v2/async/abc --start -24h -o - > last-day.json
  hubasync https://hub.example.com/shares/v2/async/abc --limit=100 --reverse
  hubasync https://hub.example.com/shares/v2/async/abc --limit=10000 --token=TOKEN \\
      --projection="feed,observation time"
  hubasync URL --format jsonl -o events.jsonl --state events.state --sort _id
  hubasync URL --follow --interval 300 --format jsonl -o events.jsonl --state events.state
  https_proxy=http://proxy.corp:3128 hubasync URL        (or --proxy URL; --no-proxy)

many shares, one service (see hubasync sync --help, hubasync status --help):
  hubasync sync CONFIG [--once]     follow every share of a TOML config
  hubasync status CONFIG            one row per share: health, events, last success, behind
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a UsageError, and which matches options
    whole: a new option never changes what an abbreviation used to mean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def _whole(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high:,}: {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1, 10**12)


def _bounded(bound: Bound) -> Callable[[str], Number]:
    """The option's type: a value within ``bound``, in its unit (``30m``, ``4M``)."""

    def parse(text: str) -> Number:
        try:
            return bound.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if not 0 < seconds <= WEEK:
        raise argparse.ArgumentTypeError(f"must be more than 0 s and at most a week: {text!r}")
    return seconds


def _add_bound(group: argparse._ArgumentGroup, bound: Bound, metavar: str, extra: str = "") -> None:
    group.add_argument(bound.option, type=_bounded(bound),
                       default=getattr(DEFAULTS, bound.name, bound.default),
                       metavar=metavar, dest=bound.name,
                       help=f"{bound.what}{extra} (default {bound.shown(bound.default)})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", metavar="URL", help="the share's URL (see above)")

    key = parser.add_argument_group("API key (first found wins)")
    key.add_argument("-k", "--apikey", help="the API key (visible in ps: prefer the two below)")
    key.add_argument("--apikey-file", metavar="FILE",
                     help="read the API key from the first line of FILE")

    query = parser.add_argument_group("query (only what is given is sent)")
    query.add_argument("-n", "--limit", type=_positive_int, metavar="N",
                       help="download at most N events (above 100,000: several queries)")
    query.add_argument("-t", "--token",
                       help="continue from this X-Next-Token (with the same --sort and --reverse)")
    query.add_argument("-s", "--start", metavar="TIME",
                       help="start time: a date (2020-10-01), a date-time, epoch seconds, a "
                            "number <= 0 for seconds before now, or a duration before now: "
                            "24h, -24h, 7d, 30m (sent as -86400, ...)")
    query.add_argument("-e", "--end", metavar="TIME",
                       help="end time, in the same forms as --start")
    query.add_argument("-q", "--filter", help='filter rule, e.g. \'"network owner"="Example Co"\'')
    query.add_argument("-p", "--projection", metavar="KEYS",
                       help='keys to keep, comma-separated, e.g. "feed,observation time"')
    query.add_argument("--sort", help="sort key; _id sorts by insertion order (default: time)")
    query.add_argument("--reverse", action="store_true", help="newest first")
    query.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="any other query parameter, sent as given (repeatable)")

    out = parser.add_argument_group("output")
    out.add_argument("--format", choices=FORMATS, default="json",
                     help="json: one array (default); jsonl: an event a line; csv: a row an "
                          "event")
    out.add_argument("-o", "--output", metavar="FILE",
                     help="write to FILE instead of stdout; - is stdout (json and csv appear "
                          "atomically; a device or FIFO is written through, a link's target is "
                          "written)")
    existing = out.add_mutually_exclusive_group()
    existing.add_argument("--append", dest="existing", action="store_const", const="append",
                          default="refuse",
                          help="with -o and --format jsonl: when FILE exists and no --state "
                               "describes it, add the events after its lines (default: refuse)")
    existing.add_argument("--overwrite", dest="existing", action="store_const",
                          const="overwrite",
                          help="with -o: when FILE exists and no --state describes it, replace "
                               "it (default: refuse)")
    out.add_argument("--state", metavar="FILE",
                     help="with -o: record progress in FILE after each page; the same command "
                          "run again continues where it stopped")
    deliver = parser.add_argument_group(
        "delivery (see docs/delivery.md): the events of the output, a JSON-lines file kept with "
        "--state, delivered to each destination, its position moved only over what its "
        "receiver acknowledged")
    deliver.add_argument("--to", action="append", default=[], metavar="URL",
                         help="a destination, repeatable: syslog+tcp://HOST:PORT, "
                              "syslog+tls://..., relp://..., relp+tls://..., hec+https://..., "
                              "kafka://BROKER[,BROKER]/TOPIC; options as URL parameters "
                              "(relp+tls://siem:2514?cacert=/etc/ca.pem)")
    deliver.add_argument(MAX_LAG.option, type=_bounded(MAX_LAG), default=None, metavar="N",
                         dest=MAX_LAG.name,
                         help=f"with --to: {MAX_LAG.what} (default "
                              f"{MAX_LAG.shown(MAX_LAG.default)})")
    out.add_argument("--follow", action="store_true",
                     help="keep the output in sync: read in insertion order, then ask again "
                          "every --interval seconds, until SIGINT, SIGTERM or SIGHUP")
    out.add_argument("--interval", type=_interval, default=None, metavar="DURATION",
                     help="with --follow: the wait between checks once caught up: seconds, or "
                          "30s, 5m, 1h (default 60)")
    out.add_argument("--recover", action="store_true",
                     help="with --state and jsonl: if the stored token is no longer valid, start "
                          "again from the time of the last event written")
    progress = out.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress line on stderr (default: on a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="never show the progress line")
    out.add_argument("--total", action="store_true",
                     help="with the progress line: post a count query first, to show the "
                          "total and a percentage (one more job on the hub)")
    out.add_argument("--strict", action="store_true",
                     help="parse every event with the json module before writing it (slower; "
                          "by default events are checked by their structure only)")
    _add_bound(out, MAX_EVENT_SIZE, "BYTES",
               "; a body beyond it ends the run (exit 6). Suffixes K, M, G")
    out.add_argument("--quiet", action="store_true",
                     help="no progress line and no notices: only errors and the token line")

    net = parser.add_argument_group("network")
    _add_bound(net, TIMEOUT, "DURATION")
    _add_bound(net, RETRIES, "N")
    net.add_argument("--cacert", metavar="FILE", help="also trust the CA certificates in FILE")
    bounds = parser.add_argument_group("bounds against a hub that misbehaves")
    _add_bound(bounds, JOB_TIMEOUT, "DURATION")
    _add_bound(bounds, PAGE_TIMEOUT, "DURATION")
    _add_bound(bounds, MAX_EMPTY_PAGES, "N")
    net.add_argument("--allow-http", action="store_true",
                     help="allow plain http to a host that is not this machine")
    proxy = net.add_mutually_exclusive_group()
    proxy.add_argument("--proxy", metavar="URL",
                       help="go through this HTTP proxy, http://[USER:PASSWORD@]HOST:PORT "
                            "(default: https_proxy / http_proxy / no_proxy from the "
                            "environment)")
    proxy.add_argument("--no-proxy", action="store_true",
                       help="connect directly, whatever the environment says")

    parser.add_argument("--debug", action="store_true",
                        help="trace requests on stderr (key redacted) and show tracebacks")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _read_key_file(path: str) -> str:
    from hubasync.files.reading import UnreadableFile, read_key_file

    try:
        return read_key_file(path)  # a regular file only, at most 64 KiB: never a FIFO's wait
    except UnreadableFile as error:
        raise UsageError(str(error)) from None


def _apikey(args: argparse.Namespace, share: ShareUrl) -> str:
    if args.apikey:
        return str(args.apikey)
    if args.apikey_file:
        return _read_key_file(args.apikey_file)
    if share.apikey:
        return share.apikey
    env = os.environ.get("APIKEY", "").strip()
    if env:
        return env
    raise UsageError("no API key: give --apikey, --apikey-file, or set APIKEY in the environment")


def _take_paging(share: ShareUrl, limit: Optional[int], token: Optional[str],
                 ) -> tuple[Optional[int], Optional[str], tuple[tuple[str, str], ...]]:
    """Take ``limit`` and ``token`` out of a pasted URL's parameters; the options win."""
    rest: list[tuple[str, str]] = []
    for key, value in share.extra_params:
        if key == "limit":
            if limit is None:
                try:
                    limit = _positive_int(value)
                except argparse.ArgumentTypeError as error:
                    raise UsageError(f"limit in the URL: {error}") from None
        elif key == "token":
            if token is None:
                token = value
        else:
            rest.append((key, value))
    return limit, token, tuple(rest)


# Options whose value may start with "-" and a digit (--start -24h): argparse would take such a
# value for an option unless it is a plain negative number.
_TIME_OPTIONS = ("-s", "--start", "-e", "--end")


def _attach_time_values(argv: Sequence[str]) -> list[str]:
    """``--start -24h`` as ``--start=-24h``, so that a duration before now reads as a value."""
    joined: list[str] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--":
            joined.append(argument)
            joined.extend(arguments)
            break
        if argument in _TIME_OPTIONS:
            value = next(arguments, None)
            if value is not None and value[:1] == "-" and value[1:2] in tuple("0123456789."):
                joined.append(f"{argument}={value}" if argument.startswith("--")
                              else argument + value)
                continue
            joined.append(argument)
            if value is not None:
                joined.append(value)
            continue
        joined.append(argument)
    return joined


def settings_from(argv: Optional[Sequence[str]]) -> RunSettings:
    """Parse and check the command line; raises UsageError."""
    args = build_parser().parse_args(_attach_time_values(sys.argv[1:] if argv is None else argv))
    share = parse_share_url(args.url)
    apikey = _apikey(args, share)
    check_key_and_origin(share, apikey, allow_http=args.allow_http)
    for option, value in (("--token", args.token), ("--start", args.start), ("--end", args.end),
                          ("--filter", args.filter), ("--projection", args.projection),
                          ("--sort", args.sort), *(("--param", text) for text in args.param)):
        if value is not None:
            check_sendable(option, value)
    limit, token, pasted = _take_paging(share, args.limit, args.token)
    extra = pasted + tuple(parse_param(text) for text in args.param)
    query = Query(
        start=None if args.start is None else relative_time(args.start),
        end=None if args.end is None else relative_time(args.end),
        filter=args.filter,
        projection=parse_projection(args.projection) if args.projection is not None else (),
        sort=args.sort,
        reverse=args.reverse,
        extra=extra,
    )
    if args.follow:
        if share.count:
            raise UsageError("--follow downloads events: it does not go with a count URL")
        if args.sort not in (None, "_id"):
            raise UsageError("--follow reads in insertion order (sort=_id): drop --sort")
        if share.is_notification:
            raise UsageError("--follow needs sort=_id, which notification shares do not take")
        query = Query(start=query.start, end=query.end, filter=query.filter,
                      projection=query.projection, sort="_id", reverse=query.reverse,
                      extra=query.extra)
        if args.reverse:
            raise UsageError("--follow reads oldest first: drop --reverse")
    query.check_for(share)
    output = None if args.output == "-" else args.output  # "-o -" is stdout, as usual
    if args.state and not output:
        raise UsageError("--state needs -o FILE (a file: - is standard output): a state records "
                         "how much of a file is written")
    if args.state and output and os.path.abspath(args.state) == os.path.abspath(output):
        raise UsageError("--state and -o must be different files")
    if args.state and output and not resolve_output(output).regular:
        raise UsageError(f"--state needs -o to name a regular file: {output} is a device, "
                         "FIFO or socket, which holds nothing a later run could continue")
    if args.follow and args.state and args.format != "jsonl":
        raise UsageError("--follow with --state keeps a JSON-lines file: add --format jsonl")
    if args.recover and not (args.state and args.format == "jsonl"):
        raise UsageError("--recover continues a JSON-lines file kept with --state")
    destinations = _destinations(args.to)
    for option, given, needs, companion in (("--interval", args.interval, "--follow", args.follow),
                                            ("--max-lag", args.max_lag, "--to", args.to)):
        if given is not None and not companion:
            raise UsageError(f"{option} goes with {needs}: without it, it would change nothing")
    if destinations and not (args.state and args.format == "jsonl" and output):
        raise UsageError("--to delivers the events of the output: give -o FILE, --state FILE and "
                         "--format jsonl (the file is the record every destination reads, the "
                         "state keeps each one's position)")
    if args.existing != "refuse":
        option = f"--{args.existing}"
        if not output:
            raise UsageError(f"{option} is about an existing -o FILE: give -o FILE")
        if args.existing == "append" and args.format != "jsonl":
            raise UsageError("--append adds lines to a JSON-lines file: add --format jsonl "
                             "(a JSON array or a CSV cannot be continued by appending)")
    if args.total and (args.quiet or args.progress is False):
        raise UsageError("--total shows a total on the progress line: drop "
                         f"{'--quiet' if args.quiet else '--no-progress'}")
    if args.total and args.follow:
        raise UsageError("--total counts toward an end, which --follow does not have: drop "
                         "--total")
    if share.count:
        given = [name for name, value in (("--limit", limit), ("--token", token),
                                          ("--state", args.state), ("--recover", args.recover),
                                          ("--append", args.existing == "append"),
                                          ("--total", args.total), ("--to", args.to))
                 if value]
        if given:
            raise UsageError(f"a count URL takes no {', '.join(given)}")
    if args.cacert:
        check_cacert(args.cacert)
    proxy: Optional[str] = None
    if args.no_proxy:
        proxy = ""
    elif args.proxy is not None:
        parse_proxy_url(args.proxy)  # refused now, before any request
        proxy = args.proxy
    return RunSettings(
        share=share, apikey=apikey, query=query, limit=limit, token=token,
        format=args.format, output=output, state=args.state, follow=args.follow,
        interval=60.0 if args.interval is None else args.interval,
        progress=None if args.quiet else args.progress,
        progress_total=args.total, existing=args.existing,
        quiet=args.quiet, cacert=args.cacert,
        debug=args.debug, recover=args.recover, strict=args.strict, proxy=proxy,
        bounds=Bounds(**{bound.name: getattr(args, bound.name) for bound in BOUNDS}),
        destinations=destinations,
        max_lag=int(MAX_LAG.default) if args.max_lag is None else args.max_lag,
    )


def _destinations(urls: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """Each --to checked before any request (one line naming what is wrong), named by its kind
    and rank: relp1, kafka1, relp2... (its dead letters go to OUTPUT.NAME.dead.jsonl)."""
    named: list[tuple[str, Any]] = []
    counts: dict[str, int] = {}
    for url in urls:
        config = parse_destination(url, None, "--to")
        counts[config.kind] = counts.get(config.kind, 0) + 1
        named.append((f"{config.kind}{counts[config.kind]}", config))
    return tuple(named)


def _reopen_closed_standard_streams() -> tuple[bool, bool]:
    """Give each closed standard descriptor (0, 1, 2) /dev/null, so that no file this run
    opens lands on one of them; returns whether stdout and stderr were closed."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        opened = os.open(os.devnull, os.O_RDWR)
        if opened != fd:
            os.dup2(opened, fd)
            os.close(opened)
    stdout_closed = 1 in closed or sys.stdout is None
    stderr_closed = 2 in closed or sys.stderr is None
    if stdout_closed:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    if stderr_closed:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (messages are dropped)
    return stdout_closed, stderr_closed


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    stdout_closed, _ = _reopen_closed_standard_streams()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    for secret in secrets_of(None):
        keep_secret(secret)
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        if arguments and arguments[0] in SERVICE_COMMANDS:
            from hubasync.service.commands import run_command

            return run_command(arguments[0], arguments[1:])
        settings = settings_from(argv)
        for secret in settings.secrets:
            keep_secret(secret)
        if stdout_closed and settings.output is None:
            raise OutputError("standard output is closed: give -o FILE, or leave stdout open")
        return run(settings)
    except HubasyncError as error:
        if debug:
            say_traceback(error)
        say(str(error))
        return error.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as error:  # a bug: still one line, unless --debug
        if debug:
            say_traceback(error)
        say(f"internal error: {one_line(repr(error))} (run with --debug for the traceback)")
        return 1

