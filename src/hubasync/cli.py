"""The ``hubasync`` command line: options, checks before any request, one-line errors.

Everything a user can get wrong on the command line is found here, before the network is
touched; what happens after is :mod:`hubasync.download`'s job. Every failure ends in one
line on stderr and a documented exit code; ``--debug`` adds the traceback and a request trace.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn, Optional, Sequence

from . import __version__
from .errors import ExitCode, HubasyncError, UsageError, one_line
from .params import Query, parse_param, parse_projection
from .retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from .sinks import FORMATS
from .stream import DEFAULT_MAX_EVENT_SIZE, size_text
from .urls import ShareUrl, is_loopback, parse_share_url, redact

PROG = "hubasync"

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
  2    usage or configuration error (bad option, bad URL, no API key)
  3    the hub refused the API key (401/403)
  4    share not found (404)
  5    the hub rejected the query (400: invalid inputs or token)
  6    the hub or the network failed beyond the retries, or sent a body beyond a
       bound (an event larger than --max-event-size): not retried
  7    the output could not be written
  130  interrupted (SIGINT/SIGTERM); the JSON written so far stays valid

examples:
  export APIKEY=...
  hubasync https://hub.example.com/shares/v2/async/abc
  hubasync https://hub.example.com/shares/v2/async/abc/0
  hubasync https://hub.example.com/shares/v2/async/abc/count
  hubasync https://hub.example.com/shares/v2/async/abc --start=2020-10-01 --end=2020-10-07
  hubasync https://hub.example.com/shares/v2/async/abc --limit=100 --reverse
  hubasync https://hub.example.com/shares/v2/async/abc --limit=10000 --token=TOKEN \\
      --projection="feed,observation time"
  hubasync URL --format jsonl -o events.jsonl --state events.state --sort _id
  hubasync URL --follow --interval 300 --format jsonl -o events.jsonl --state events.state
"""


@dataclass(frozen=True)
class Settings:
    """Everything the run needs, checked."""

    share: ShareUrl
    apikey: str
    query: Query
    limit: Optional[int]
    token: Optional[str]
    format: str
    output: Optional[str]
    state: Optional[str]
    follow: bool
    interval: float
    progress: Optional[bool]  # None: on a terminal only
    quiet: bool
    timeout: float
    retries: int
    cacert: Optional[str]
    debug: bool
    recover: bool
    strict: bool = False
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a UsageError."""

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


def _count(text: str) -> int:
    return _whole(text, 0, 1000)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 86400 * 7:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most a week: {text!r}")
    return value


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
MAX_EVENT_SIZE_RANGE = (1 << 10, 1 << 32)


def _size(text: str) -> int:
    """A size in bytes, with an optional binary suffix: 512K, 8M, 1G (KiB, MiB, GiB)."""
    number = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = number[-1:] if number[-1:] in ("K", "M", "G") else ""
    try:
        value = int(number[: len(number) - len(unit)]) * _SIZE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a size in bytes (e.g. 8M, 512K, 1G): {text!r}") from None
    low, high = MAX_EVENT_SIZE_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"must be between {size_text(low)} and {size_text(high)}: {text!r}")
    return value


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
    query.add_argument("-t", "--token", help="continue from this X-Next-Token")
    query.add_argument("-s", "--start", help="start time: date, date-time, epoch, or <=0 for "
                                             "seconds before now")
    query.add_argument("-e", "--end", help="end time, in the same forms as --start")
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
                     help="write to FILE instead of stdout (json and csv appear atomically)")
    out.add_argument("--state", metavar="FILE",
                     help="with -o: record progress in FILE after each page; the same command "
                          "run again continues where it stopped")
    out.add_argument("--follow", action="store_true",
                     help="keep the output in sync: read in insertion order, then ask again "
                          "every --interval seconds, until SIGINT or SIGTERM")
    out.add_argument("--interval", type=_seconds, default=60.0, metavar="SECONDS",
                     help="with --follow: seconds between checks once caught up (default 60)")
    out.add_argument("--recover", action="store_true",
                     help="with --state and jsonl: if the stored token is no longer valid, start "
                          "again from the time of the last event written")
    progress = out.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show a progress line on stderr (default: on a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_false",
                          help="never show the progress line")
    out.add_argument("--strict", action="store_true",
                     help="parse every event with the json module before writing it (slower; "
                          "by default events are checked by their structure only)")
    out.add_argument("--max-event-size", type=_size, default=DEFAULT_MAX_EVENT_SIZE,
                     metavar="BYTES",
                     help=f"the largest event accepted, and the longest run of whitespace "
                          f"between events; a body beyond it ends the run (exit 6). Suffixes "
                          f"K, M, G (default {size_text(DEFAULT_MAX_EVENT_SIZE)})")
    out.add_argument("--quiet", action="store_true",
                     help="no progress line and no notices: only errors and the token line")

    net = parser.add_argument_group("network")
    net.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help=f"most seconds to wait to connect or for the hub's next bytes "
                          f"(default {DEFAULT_TIMEOUT:g})")
    net.add_argument("--retries", type=_count, default=DEFAULT_RETRIES, metavar="N",
                     help=f"transient failures tolerated in a row before giving up "
                          f"(default {DEFAULT_RETRIES})")
    net.add_argument("--cacert", metavar="FILE", help="also trust the CA certificates in FILE")
    net.add_argument("--allow-http", action="store_true",
                     help="allow plain http to a host that is not this machine")

    parser.add_argument("--debug", action="store_true",
                        help="trace requests on stderr (key redacted) and show tracebacks")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _read_key_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.readline().strip()
    except OSError as error:
        raise UsageError(f"cannot read the API key file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the API key file {path} is not text") from None
    if not key:
        raise UsageError(f"the API key file {path} is empty")
    return key


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


def _check_key(key: str) -> None:
    if any(ord(char) < 0x21 or ord(char) > 0x7E for char in key):
        raise UsageError("the API key holds spaces or characters that cannot go in a header")


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


def settings_from(argv: Optional[Sequence[str]]) -> Settings:
    """Parse and check the command line; raises UsageError."""
    args = build_parser().parse_args(argv)
    share = parse_share_url(args.url)
    if share.scheme == "http" and not (args.allow_http or is_loopback(share.host)):
        raise UsageError(
            f"refusing plain http to {share.host}: the API key would cross the network "
            "unencrypted (use https, or --allow-http if you must)"
        )
    apikey = _apikey(args, share)
    _check_key(apikey)
    limit, token, pasted = _take_paging(share, args.limit, args.token)
    extra = pasted + tuple(parse_param(text) for text in args.param)
    query = Query(
        start=args.start,
        end=args.end,
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
    if args.state and not args.output:
        raise UsageError("--state needs -o FILE: a state records how much of a file is written")
    if args.state and args.output and os.path.abspath(args.state) == os.path.abspath(args.output):
        raise UsageError("--state and -o must be different files")
    if args.follow and args.state and args.format != "jsonl":
        raise UsageError("--follow with --state keeps a JSON-lines file: add --format jsonl")
    if args.recover and not (args.state and args.format == "jsonl"):
        raise UsageError("--recover continues a JSON-lines file kept with --state")
    if share.count:
        given = [name for name, value in (("--limit", limit), ("--token", token),
                                          ("--state", args.state), ("--recover", args.recover))
                 if value]
        if given:
            raise UsageError(f"a count URL takes no {', '.join(given)}")
    if args.cacert and not os.path.isfile(args.cacert):
        raise UsageError(f"--cacert {args.cacert}: no such file")
    return Settings(
        share=share, apikey=apikey, query=query, limit=limit, token=token,
        format=args.format, output=args.output, state=args.state, follow=args.follow,
        interval=args.interval, progress=None if args.quiet else args.progress,
        quiet=args.quiet, timeout=args.timeout, retries=args.retries, cacert=args.cacert,
        debug=args.debug, recover=args.recover, strict=args.strict,
        max_event_size=args.max_event_size,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    secret: Optional[str] = None
    try:
        settings = settings_from(argv)
        secret = settings.apikey
        from .download import run

        return run(settings)
    except HubasyncError as error:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: {redact(str(error), secret)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as error:  # a bug: still one line, unless --debug
        if debug:
            traceback.print_exc()
        print(f"{PROG}: internal error: {redact(one_line(repr(error)), secret)} (run with "
              f"--debug for the traceback)", file=sys.stderr)
        return 1
