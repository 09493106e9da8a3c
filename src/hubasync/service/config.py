"""The configuration of ``hubasync sync``: one TOML file, many shares, checked before any request.

``load_config(path)`` reads the file, resolves every share's API key (from the environment or a
file, read now), and returns a frozen ``ServiceConfig``; anything wrong ends in one
``UsageError`` naming the file, the key (``shares.cust42.url``) and the reason. Keys are secrets:
they appear in no ``repr`` or ``str`` of the objects here.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from hubasync.core.access import check_key_and_origin
from hubasync.core.bounds import ALL as BOUNDS
from hubasync.core.bounds import DEFAULTS, MAX_LAG, Bound, Bounds, parse_duration
from hubasync.core.params import Query, parse_projection, relative_time, reserved_param
from hubasync.core.urls import ShareUrl, parse_share_url
from hubasync.delivery import parse_destination
from hubasync.errors import UsageError
from hubasync.files.lock import lock_path
from hubasync.files.reading import UnreadableFile, read_bounded, read_key_file
from hubasync.service.metrics import parse_listen_address
from hubasync.transport.proxy import parse_proxy_url, secrets_of
from hubasync.transport.tls import check_cacert

FORMATS = ("jsonl", "json", "csv")
DEFAULT_FORMAT = "jsonl"
DEFAULT_CONCURRENCY = 8
DEFAULT_INTERVAL = 300.0
MAX_SECONDS = 7 * 86400.0
MAX_NAME_LENGTH = 128
CONFIG_LIMIT = 1 << 20  # bytes of the config file
STATE_SUFFIX = ".state"
STATUS_SUFFIX = ".status.json"

_VARIABLE_RE = re.compile(r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"
                          r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|\$")
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_KEY_SOURCES = ("apikey_env", "apikey_file")
_BOUND_KEYS = tuple(bound.name for bound in BOUNDS)
_QUERY_KEYS = ("start", "end", "filter", "projection", "param")
_TOP_KEYS = frozenset(("directory", "concurrency", "interval", "metrics", "proxy", "shares",
                       "destinations", "max_lag", *_KEY_SOURCES, *_BOUND_KEYS))
_SHARE_KEYS = frozenset(("url", "format", "allow_http", "cacert", "deliver", "max_lag",
                         *_KEY_SOURCES, *_BOUND_KEYS, *_QUERY_KEYS))
_FILE_OPTIONS = frozenset(("cacert", "cert", "key"))  # a destination's files: not *_file only


@dataclass(frozen=True)
class ShareConfig:
    """One share the service follows: where it is, what to ask, where it goes, its bounds."""

    name: str
    url: ShareUrl
    query: Query
    apikey: str = field(repr=False)
    format: str
    output: str
    state: str
    status: str
    bounds: Bounds = DEFAULTS
    allow_http: bool = False
    cacert: Optional[str] = None
    # (name, hubasync.delivery.DestinationConfig) of each destination its events go to
    destinations: Tuple[Tuple[str, Any], ...] = ()
    max_lag: int = int(MAX_LAG.default)

    def __str__(self) -> str:
        return f"{self.name} ({self.url.display()})"

    def dead_letters(self, destination: str) -> str:
        """The dead-letter file of one of its destinations, beside its output."""
        return f"{self.output[:-len('.jsonl')]}.{destination}.dead.jsonl"



@dataclass(frozen=True)
class ServiceConfig:
    """The whole service: its file, its directory, its limits, and its shares in file order."""

    path: str
    directory: str
    shares: Tuple[ShareConfig, ...]
    concurrency: int = DEFAULT_CONCURRENCY
    interval: float = DEFAULT_INTERVAL
    metrics: Optional[Tuple[str, int]] = None  # (host, port) to serve /metrics on
    proxy: Optional[str] = field(default=None, repr=False)  # None: the environment; "": none

    def __str__(self) -> str:
        return f"{self.path} ({len(self.shares)} shares)"

    def share(self, name: str) -> ShareConfig:
        for share in self.shares:
            if share.name == name:
                return share
        raise KeyError(name)

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Every secret the config holds (API keys, a proxy's password, the destinations'
        tokens and passwords): to redact from logs."""
        found = {share.apikey for share in self.shares if share.apikey}
        if self.proxy:
            found.update(secrets_of(self.proxy))
        for share in self.shares:
            for _, destination in share.destinations:
                if destination is not None:  # read without keys (status): no secret was read
                    found.update(secret.reveal() for secret in destination.secrets.values())
        return tuple(sorted(found, key=len, reverse=True))


def share_files(share: ShareConfig) -> Tuple[Tuple[str, str], ...]:
    """The files a share writes or locks, each with its role: output, state, status record,
    and the lock files of the output and of the state."""
    return (("output", share.output), ("state", share.state), ("status record", share.status),
            ("output's lock", lock_path(share.output)), ("state's lock", lock_path(share.state)),
            *((f"dead letters of {name}", share.dead_letters(name))
              for name, _ in share.destinations))


def prepare_directory(config: ServiceConfig) -> None:
    """Create the config's ``directory`` if it is missing (mode 0750, less what the umask
    takes, its missing parents too), and check that it can be written.

    For the service to call at start: loading a config creates nothing (``hubasync status``
    on a missing directory leaves it missing). Raises UsageError naming the key and why.
    """
    directory = config.directory
    try:
        _make_directory(directory)
    except OSError as error:
        why = "a file is in the way" if isinstance(error, (FileExistsError, NotADirectoryError)) \
            else error.strerror or str(error)
        raise UsageError(f"{config.path}: directory: cannot create {directory}: {why}") from None
    if not os.path.isdir(directory):
        raise UsageError(f"{config.path}: directory: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"{config.path}: directory: {directory} cannot be written by this user")


def _make_directory(path: str) -> None:
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and parent != path and not os.path.isdir(parent):
        _make_directory(parent)
    try:
        os.mkdir(path, 0o750)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def load_config(path: str, environ: Optional[Mapping[str, str]] = None, *,
                keys: bool = True) -> ServiceConfig:
    """Read and check the config at ``path``; keys are resolved from ``environ`` (os.environ).

    ``keys=False`` reads no key (each share's ``apikey`` is empty): for ``hubasync status``,
    which sends nothing and may run as a user who cannot read them.
    """
    return _Loader(path, os.environ if environ is None else environ, keys).load()


class _Loader:
    def __init__(self, path: str, environ: Mapping[str, str], keys: bool = True) -> None:
        self.destinations: Dict[str, Any] = {}
        self.path = os.path.abspath(path)
        self.shown = path
        self.environ = environ
        self.keys = keys

    def refuse(self, key: str, reason: str) -> UsageError:
        return UsageError(f"{self.shown}: {key}: {reason}")

    def load(self) -> ServiceConfig:
        top = self.read()
        self.check_keys(top, _TOP_KEYS, "")
        base_dir = os.path.dirname(self.path)
        directory = self.string(top, "directory", "", default=".")
        if not directory:
            raise self.refuse("directory", "is empty")
        directory = os.path.normpath(os.path.join(base_dir, os.path.expanduser(directory)))
        concurrency = self.integer(top, "concurrency", "", DEFAULT_CONCURRENCY, minimum=1)
        interval = self.seconds(top, "interval", "", DEFAULT_INTERVAL)
        metrics = None
        if "metrics" in top:
            try:
                metrics = parse_listen_address(self.string(top, "metrics", ""))
            except ValueError as error:
                raise self.refuse("metrics", str(error)) from None
        proxy = self.proxy(top)
        tables = top.get("shares")
        if tables is None or tables == {}:
            raise self.refuse("shares", "no share is configured; add a [shares.NAME] table "
                                        "with its url")
        if not isinstance(tables, dict):
            raise self.refuse("shares", "must be a table of [shares.NAME] tables")
        self.destinations = self.destination_tables(top)
        shares = tuple(self.share(name, table, top, directory)
                       for name, table in tables.items())
        self.check_paths(shares)
        return ServiceConfig(path=self.path, directory=directory, shares=shares,
                             concurrency=concurrency, interval=interval, metrics=metrics,
                             proxy=proxy)

    def read(self) -> Dict[str, Any]:
        toml = _toml_module()
        try:
            raw = read_bounded(self.path, CONFIG_LIMIT, "the config")
        except UnreadableFile as error:
            raise UsageError(f"{self.shown}: cannot read the config: {error.reason}") from None
        try:
            data: Dict[str, Any] = toml.loads(raw.decode("utf-8"))
            return data
        except toml.TOMLDecodeError as error:
            raise UsageError(f"{self.shown}: not valid TOML: {error}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{self.shown}: not valid TOML: it is not UTF-8 text") from None
        except RecursionError:
            raise UsageError(f"{self.shown}: not valid TOML: nested too deeply") from None

    def check_keys(self, table: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                hint = ""
                if key == "sort":
                    hint = " (sync reads every share in insertion order, sort=_id)"
                elif key.lower() == "apikey":
                    hint = " (the key itself stays out of the config: name it with apikey_env " \
                           "or apikey_file)"
                raise self.refuse(prefix + _shown_key(key), f"unknown key{hint}; expected one "
                                  f"of {', '.join(sorted(allowed))}")

    def share(self, name: Any, table: Any, top: Mapping[str, Any],
              directory: str) -> ShareConfig:
        prefix = f"shares.{_shown_key(name)}."
        if not (_NAME_RE.fullmatch(name) and len(name) <= MAX_NAME_LENGTH
                and name.strip(".")):
            raise self.refuse(f"shares.{_shown_key(name)}",
                              "a share's name may hold only letters, digits, '-', '_' and '.' "
                              f"(not only dots), at most {MAX_NAME_LENGTH} characters")
        if not isinstance(table, dict):
            raise self.refuse(prefix[:-1], "must be a table with the share's url")
        self.check_keys(table, _SHARE_KEYS, prefix)
        if "url" not in table:
            raise self.refuse(prefix + "url", "missing: every share needs its url")
        url = self.share_url(table, prefix)
        format_ = self.string(table, "format", prefix, default=DEFAULT_FORMAT)
        if format_ not in FORMATS:
            raise self.refuse(prefix + "format", f"{_quoted(format_)} is not one of "
                                                 f"{', '.join(FORMATS)}")
        allow_http = self.boolean(table, "allow_http", prefix)
        apikey = ""
        if self.keys:
            apikey, key_name = self.apikey(table, top, prefix, url)
            try:
                check_key_and_origin(url, apikey, allow_http=True)
            except UsageError as error:
                raise self.refuse(key_name, str(error)) from None
            try:
                check_key_and_origin(url, apikey, allow_http=allow_http)
            except UsageError as error:
                raise self.refuse(prefix + "url", str(error).replace(
                    "--allow-http, allow_http=True", "allow_http = true")) from None
        cacert = None
        if "cacert" in table:
            cacert = os.path.join(os.path.dirname(self.path),
                                  os.path.expanduser(self.string(table, "cacert", prefix)))
            try:
                check_cacert(cacert, "the file")
            except UsageError as error:
                raise self.refuse(prefix + "cacert", str(error)) from None
        stem = os.path.join(directory, name)
        return ShareConfig(
            name=name, url=url, query=self.query(table, prefix, url), apikey=apikey,
            format=format_, output=f"{stem}.{format_}", state=stem + STATE_SUFFIX,
            status=stem + STATUS_SUFFIX,
            bounds=Bounds(**{bound.name: self.bound(table, bound, prefix, self.bound(
                top, bound, "", getattr(DEFAULTS, bound.name))) for bound in BOUNDS}),
            allow_http=allow_http, cacert=cacert,
            destinations=self.deliveries(table, prefix, format_),
            max_lag=self.bound(table, MAX_LAG, prefix, self.bound(top, MAX_LAG, "",
                                                                  int(MAX_LAG.default))),
        )

    def share_url(self, table: Mapping[str, Any], prefix: str) -> ShareUrl:
        text = self.string(table, "url", prefix)
        try:
            url = parse_share_url(text)
        except UsageError as error:
            raise self.refuse(prefix + "url", str(error)) from None
        if url.count:
            raise self.refuse(prefix + "url", "a count URL counts events; sync downloads them: "
                                              "drop /count")
        for key, _ in url.extra_params:
            if reserved_param(key) is not None:
                raise self.refuse(prefix + "url", f"its query sets {_quoted(key)}, which sync "
                                                  "sets itself: drop it from the URL")
        return url

    def query(self, table: Mapping[str, Any], prefix: str, url: ShareUrl) -> Query:
        projection: Tuple[str, ...] = ()
        if "projection" in table:
            value = table["projection"]
            if isinstance(value, str):
                try:
                    projection = parse_projection(value)
                except UsageError:
                    raise self.refuse(prefix + "projection", "names no keys") from None
            elif isinstance(value, list) and value and all(
                    isinstance(item, str) and item.strip() for item in value):
                projection = tuple(item.strip() for item in value)
            else:
                raise self.refuse(prefix + "projection", "expected keys as a string \"a,b\" or a "
                                                         "list of strings [\"a\", \"b\"]")
        query = Query(start=self.time(table, "start", prefix), end=self.time(table, "end", prefix),
                      filter=self.optional_string(table, "filter", prefix),
                      projection=projection, extra=url.extra_params + self.params(table, prefix))
        if url.is_notification:
            # a notification share is read in insertion order already, and takes no sort
            try:
                query.check_for(url)
            except UsageError as error:
                raise self.refuse(prefix + "url", str(error).replace(
                    "drop --", "drop ")) from None
            return query
        return dataclasses.replace(query, sort="_id")

    def params(self, table: Mapping[str, Any], prefix: str) -> Tuple[Tuple[str, str], ...]:
        given = table.get("param", {})
        if not isinstance(given, dict):
            raise self.refuse(prefix + "param", "must be a table of extra query parameters, e.g. "
                                                "param = { feed = \"x\" }")
        pairs = []
        for key, value in given.items():
            where = f"{prefix}param.{_shown_key(key)}"
            if not key.strip():
                raise self.refuse(where, "the parameter's name is empty")
            if reserved_param(key) is not None:
                raise self.refuse(where, "sync sets this parameter itself (the key goes in the "
                                         "Authorization header only)")
            if isinstance(value, bool):
                raise self.refuse(where, "expected a string or a number, not true/false")
            if not isinstance(value, (str, int, float)):
                raise self.refuse(where, "expected a string or a number")
            pairs.append((key, str(value)))
        return tuple(pairs)

    def time(self, table: Mapping[str, Any], key: str, prefix: str) -> Optional[str]:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool):
            raise self.refuse(prefix + key, "expected a time, not true/false")
        if isinstance(value, datetime.datetime):  # in the hub's own format, in UTC
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)  # a local time is UTC
            return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, (int, float)) and math.isfinite(value):
            return str(value)
        if isinstance(value, str) and value.strip():
            return relative_time(value)  # "24h": that long before now, as --start takes it
        raise self.refuse(prefix + key, "expected a time: a date, a date-time, epoch seconds, "
                                        "<=0 for seconds before now, or a duration (\"24h\")")

    def apikey(self, table: Mapping[str, Any], top: Mapping[str, Any], prefix: str,
               url: ShareUrl) -> Tuple[str, str]:
        """The share's key and the config key it came from, the share's own source first."""
        own = self.key_source(table, prefix)
        if own is not None:
            return own
        if url.apikey:
            return url.apikey, prefix + "url"
        inherited = self.key_source(top, "")
        if inherited is not None:
            return inherited
        raise self.refuse(prefix + "apikey_env", "no API key: set apikey_env or apikey_file, in "
                                                 "the share or at the top of the file")

    def key_source(self, table: Mapping[str, Any], prefix: str) -> Optional[Tuple[str, str]]:
        if "apikey_env" in table and "apikey_file" in table:
            raise self.refuse(prefix + "apikey_file", "give apikey_env or apikey_file, not both")
        if "apikey_env" in table:
            name = self.string(table, "apikey_env", prefix)
            value = self.environ.get(name, "").strip()
            if not value:
                raise self.refuse(prefix + "apikey_env",
                                  f"the environment variable {_quoted(name)} is not set or empty")
            return value, prefix + "apikey_env"
        if "apikey_file" in table:
            given = self.expand(self.string(table, "apikey_file", prefix), prefix + "apikey_file")
            path = os.path.join(os.path.dirname(self.path), os.path.expanduser(given))
            return self.read_key_file(path, prefix + "apikey_file"), prefix + "apikey_file"
        return None

    def expand(self, text: str, key: str) -> str:
        """``$NAME`` and ``${NAME}`` replaced by the environment's values (for systemd's
        ``$CREDENTIALS_DIRECTORY``); an unset variable is refused, ``$$`` is one ``$``."""

        def value(match: re.Match[str]) -> str:
            if match[0] == "$$":
                return "$"
            name = match["braced"] or match["bare"]
            if name is None:
                raise self.refuse(key, "a $ that starts no variable name; write $$ for a $")
            found = self.environ.get(name, "")
            if not found:
                raise self.refuse(key, f"the environment variable {_quoted(name)} is not set "
                                       "or empty")
            return found

        return _VARIABLE_RE.sub(value, text)

    def read_key_file(self, path: str, key: str) -> str:
        try:
            return read_key_file(path, "the key file")
        except UnreadableFile as error:
            raise self.refuse(key, str(error)) from None

    def proxy(self, top: Mapping[str, Any]) -> Optional[str]:
        if "proxy" not in top:
            return None
        proxy = self.string(top, "proxy", "")
        if proxy:
            try:
                parse_proxy_url(proxy, "the proxy")  # as --proxy: refused before any request
            except UsageError as error:
                raise self.refuse("proxy", str(error)) from None
        return proxy

    def destination_tables(self, top: Mapping[str, Any]) -> Dict[str, Any]:
        """The ``[destinations.NAME]`` tables, each checked into a DestinationConfig (its url,
        its options; files relative to the config)."""
        tables = top.get("destinations", {})
        if not isinstance(tables, dict):
            raise self.refuse("destinations", "must be a table of [destinations.NAME] tables")
        checked: Dict[str, Any] = {}
        for name, table in tables.items():
            where = f"destinations.{_shown_key(name)}"
            if not (_NAME_RE.fullmatch(name) and len(name) <= MAX_NAME_LENGTH
                    and name.strip(".")):
                raise self.refuse(where, "a destination's name may hold only letters, digits, "
                                         f"'-', '_' and '.', at most {MAX_NAME_LENGTH} "
                                         "characters")
            if not isinstance(table, dict) or not isinstance(table.get("url"), str):
                raise self.refuse(where, "must be a table with the destination's url")
            if not self.keys:  # hubasync status: the names are enough, and no secret is read
                checked[name] = None
                continue
            options = {key: self.relative_file(key, value, f"{where}.{key}")
                       for key, value in table.items() if key != "url"}
            try:
                checked[name] = parse_destination(table["url"], options, f"{where}.url")
            except UsageError as error:
                raise UsageError(f"{self.shown}: {error}") from None
        return checked

    def relative_file(self, key: str, value: Any, where: str) -> Any:
        """A destination's file option: variables expanded as in ``apikey_file`` (systemd's
        ``$CREDENTIALS_DIRECTORY``), relative to the config's folder."""
        if isinstance(value, str) and (key in _FILE_OPTIONS or key.endswith("_file")):
            given = self.expand(value, where)
            return os.path.join(os.path.dirname(self.path), os.path.expanduser(given))
        return value

    def deliveries(self, table: Mapping[str, Any], prefix: str,
                   format_: str) -> Tuple[Tuple[str, Any], ...]:
        given = table.get("deliver", [])
        if not isinstance(given, list) or not all(isinstance(name, str) for name in given):
            raise self.refuse(prefix + "deliver", "expected a list of destination names, e.g. "
                                                  "deliver = [\"siem\"]")
        if len(set(given)) != len(given):
            raise self.refuse(prefix + "deliver", "names a destination twice")
        for name in given:
            if name not in self.destinations:
                known = ", ".join(sorted(self.destinations)) or "none is configured"
                raise self.refuse(prefix + "deliver", f"no [destinations.{_shown_key(name)}] "
                                                      f"table (known: {known})")
        if given and format_ != "jsonl":
            raise self.refuse(prefix + "deliver", "a share with destinations keeps a JSON-lines "
                                                  "file (their record): set format = \"jsonl\"")
        return tuple((name, self.destinations[name]) for name in given)

    def check_paths(self, shares: Tuple[ShareConfig, ...]) -> None:
        """Every file a share writes or locks is no other share's, nor the config or its lock:
        a clash is refused naming both keys."""
        owners: Dict[str, str] = {os.path.normcase(self.path): "the config itself",
                                  os.path.normcase(lock_path(self.path)): "the config's lock"}
        for share in shares:
            key = f"shares.{_shown_key(share.name)}"
            for role, path in share_files(share):
                owner = f"the {role} of {key}"
                other = owners.setdefault(os.path.normcase(path), owner)
                if other != owner:
                    raise self.refuse(key, f"its {role} {path} would be {other} too; rename "
                                           "one" + (" or move the config" if "config" in other
                                                    else ""))

    def string(self, table: Mapping[str, Any], key: str, prefix: str,
               default: Optional[str] = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.refuse(prefix + key, f"expected a string, not {_type_name(value)}")
        return value

    def optional_string(self, table: Mapping[str, Any], key: str, prefix: str) -> Optional[str]:
        return self.string(table, key, prefix) if key in table else None

    def boolean(self, table: Mapping[str, Any], key: str, prefix: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.refuse(prefix + key, f"expected true or false, not {_type_name(value)}")
        return value

    def integer(self, table: Mapping[str, Any], key: str, prefix: str, default: int, *,
                minimum: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.refuse(prefix + key, f"expected a whole number, not {_type_name(value)}")
        if value < minimum:
            raise self.refuse(prefix + key, f"must be at least {minimum}, not {value}")
        return value

    def bound(self, table: Mapping[str, Any], bound: Bound, prefix: str, default: Any) -> Any:
        """The bound's value in ``table`` (a number, or text such as "30m" or "8M"), checked as
        the command line checks its option; ``default`` when absent."""
        if bound.name not in table:
            return default
        return bound.check(table[bound.name], f"{self.shown}: {prefix}{bound.name}", text=True)

    def seconds(self, table: Mapping[str, Any], key: str, prefix: str, default: float) -> float:
        """A duration: seconds as a number, or text with a unit ("90s", "5m", "24h", "7d")."""
        value = table.get(key, default)
        if isinstance(value, str):
            try:
                value = parse_duration(value)
            except ValueError as error:
                raise self.refuse(prefix + key, str(error)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(prefix + key, f"expected a duration (seconds, or \"5m\"), not "
                                            f"{_type_name(value)}")
        if not 0 < value <= MAX_SECONDS:
            raise self.refuse(prefix + key, f"must be more than 0 and at most a week "
                                            f"({MAX_SECONDS:g}), not {value:g}")
        return float(value)


def _toml_module() -> Any:
    """tomllib, or tomli before Python 3.11: imported only when a config is read, so that the
    downloader alone (``hubasync.pyz`` on Python 3.9, say) needs neither."""
    if sys.version_info >= (3, 11):
        import tomllib  # novermin

        return tomllib
    else:
        try:
            import tomli
        except ImportError:
            raise UsageError("reading a TOML config on Python < 3.11 needs tomli: "
                             "pip install tomli") from None
        return tomli


_TYPE_NAMES: Dict[type, str] = {
    bool: "true/false", int: "a whole number", float: "a number", str: "a string",
    list: "a list", dict: "a table", datetime.datetime: "a date-time", datetime.date: "a date",
    datetime.time: "a time",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _shown_key(key: str) -> str:
    """A TOML key as it can be written back: bare when it can be, else quoted and escaped."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return _quoted(key)


def _quoted(text: str) -> str:
    escaped = "".join(char if " " <= char < "\x7f" and char not in '"\\'
                      else f"\\u{ord(char):04x}" for char in text[:60])
    return f'"{escaped}{"..." if len(text) > 60 else ""}"'

