"""Destination addresses: a URL (``relp+tls://host:2514``) and its options, checked before any
connection, into a :class:`DestinationConfig`.

Options come from a mapping (a TOML table ``[destinations.NAME]``) or from the URL's query
(``relp+tls://h:2514?cacert=/ca.pem&window=512``, for ``--to``), or both (an option given twice
is refused). Every option has a documented default and bounds (docs/delivery.md); an unknown
option, a value out of bounds, an unreadable file or a missing secret is a ``UsageError``
naming the key.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from hubasync.core.redaction import Secret

from ..errors import UsageError
from .secrets import read_secret

KINDS = {
    "syslog+tcp": "syslog", "syslog+tls": "syslog",
    "relp": "relp", "relp+tls": "relp",
    "hec+https": "hec", "hec+http": "hec",
    "kafka": "kafka",
}
TLS_SCHEMES = frozenset(("syslog+tls", "relp+tls", "hec+https"))

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
    "solaris-cron": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
    "local5": 21, "local6": 22, "local7": 23,
}
SEVERITIES = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7,
}
MIB = 1024 * 1024


@dataclass(frozen=True)
class Option:
    """One option: its type, default and bounds."""

    kind: str  # "int", "float", "bool", "str", "file", "choice", "env"
    default: Any = None
    low: float = -math.inf
    high: float = math.inf
    choices: Tuple[str, ...] = ()
    pattern: Optional[str] = None  # a str must match it whole
    hint: str = ""  # what a valid value looks like, for messages


_TIMEOUT = Option("float", 30.0, 0.1, 3600.0)
_SYSLOG_OPTIONS: Dict[str, Option] = {
    "timeout": _TIMEOUT,
    "facility": Option("choice", "user", choices=tuple(FACILITIES), hint="a facility name"),
    "severity": Option("choice", "info", choices=tuple(SEVERITIES), hint="a severity name"),
    "hostname": Option("str", None, pattern=r"[!-~]{1,255}",
                       hint="1 to 255 printable ASCII characters, no space"),
    "sd_id": Option("str", "hubasync@32473", pattern=r"[!#-<>-\\^-~]{1,32}@[0-9][0-9.]*",
                    hint="NAME@ENTERPRISE-NUMBER, at most 32 characters, no '=', ']', '\"' "
                         "or space"),
    "max_message_size": Option("int", 8192, 480, 64 * MIB),
}
_TLS_OPTIONS: Dict[str, Option] = {
    "cacert": Option("file"),
    "cert": Option("file"),
    "key": Option("file"),
    "key_passphrase_env": Option("env"),
    "key_passphrase_file": Option("file"),
}
_RELP_OPTIONS = dict(_SYSLOG_OPTIONS, window=Option("int", 16384, 1, 65536))
_HEC_OPTIONS: Dict[str, Option] = {
    "timeout": _TIMEOUT,
    "token_env": Option("env"),
    "token_file": Option("file"),
    "max_batch_bytes": Option("int", 1_000_000, 1024, 800 * MIB),
    "ack_timeout": Option("float", 300.0, 1.0, 86400.0),
    "ack_poll_interval": Option("float", 1.0, 0.01, 60.0),
    "key_field": Option("str", "hubasync_key", pattern=r"[A-Za-z_][A-Za-z0-9_]{0,99}",
                        hint="a field name: letters, digits, '_'"),
    "sourcetype": Option("str", None, pattern=r"[^\x00-\x1f\x7f]{1,256}", hint="1-256 chars"),
    "source": Option("str", None, pattern=r"[^\x00-\x1f\x7f]{1,256}", hint="1-256 chars"),
    "index": Option("str", None, pattern=r"[a-z0-9_][a-z0-9_-]{0,79}",
                    hint="a Splunk index name: lowercase letters, digits, '_', '-'"),
    "allow_http": Option("bool", False),
}
_KAFKA_OPTIONS: Dict[str, Option] = {
    # librdkafka refuses a socket.timeout.ms above 300000
    "timeout": Option("float", 30.0, 0.1, 300.0),
    "linger_ms": Option("int", 5, 0, 60000),
    "compression": Option("choice", "none", choices=("none", "gzip", "snappy", "lz4", "zstd")),
    "security_protocol": Option("choice", "plaintext",
                                choices=("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")),
    "cacert": Option("file"),
    "cert": Option("file"),
    "key": Option("file"),
    "key_passphrase_env": Option("env"),
    "key_passphrase_file": Option("file"),
    "sasl_mechanism": Option("choice", None, choices=("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
    "sasl_username": Option("str", None, pattern=r"[^\x00-\x1f\x7f]{1,255}", hint="1-255 chars"),
    "password_env": Option("env"),
    "password_file": Option("file"),
}
OPTIONS: Dict[str, Dict[str, Option]] = {
    "syslog+tcp": _SYSLOG_OPTIONS,
    "syslog+tls": dict(_SYSLOG_OPTIONS, **_TLS_OPTIONS),
    "relp": _RELP_OPTIONS,
    "relp+tls": dict(_RELP_OPTIONS, **_TLS_OPTIONS),
    "hec+http": _HEC_OPTIONS,
    "hec+https": dict(_HEC_OPTIONS, **_TLS_OPTIONS),
    "kafka": _KAFKA_OPTIONS,
}


@dataclass(frozen=True)
class DestinationConfig:
    """A checked destination: where it is, and every option with its default filled in.

    Secrets are held as :class:`~hubasync.delivery.secrets.Secret`; ``name`` (the URL without
    its query) is what messages show.
    """

    scheme: str
    kind: str  # syslog, relp, hec, kafka
    name: str  # e.g. relp+tls://siem.example:2514, kafka://b1:9092,b2:9092/events
    host: str  # for kafka: the first broker's host
    port: int
    options: Mapping[str, Any]
    brokers: Tuple[str, ...] = ()  # kafka: HOST:PORT each
    topic: str = ""  # kafka
    secrets: Mapping[str, Secret] = field(default_factory=dict)  # "token", "key_passphrase", ...

    @property
    def tls(self) -> bool:
        if self.kind == "kafka":
            return str(self.options["security_protocol"]) in ("ssl", "sasl_ssl")
        return self.scheme in TLS_SCHEMES

    def secret(self, name: str) -> Optional[Secret]:
        return self.secrets.get(name)

    def __repr__(self) -> str:  # options hold no secret values, but keep it short
        return f"DestinationConfig({self.name!r})"


def _where_of(where: str, key: str, from_query: bool) -> str:
    if from_query:
        return f"{where} (query parameter {key})"
    if where.endswith(".url"):
        return f"{where[:-4]}.{key}"
    return f"{where} option {key}"


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _checked(spec: Option, value: object, from_query: bool, where: str) -> Any:
    """``value`` as the option's type, within its bounds; UsageError naming ``where``."""
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if from_query and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise UsageError(f"{where}: must be true or false, not {_describe(value)}")
    if spec.kind in ("int", "float"):
        number: Any = value
        if from_query and isinstance(value, str):
            try:
                number = int(value) if spec.kind == "int" else float(value)
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or (
                spec.kind == "int" and not isinstance(number, int)):
            kind = "an integer" if spec.kind == "int" else "a number"
            raise UsageError(f"{where}: must be {kind}, not {_describe(value)}")
        if not (spec.low <= number <= spec.high) or number != number:
            raise UsageError(f"{where}: must be from {spec.low:g} to {spec.high:g}, "
                             f"not {_describe(value)}")
        return float(number) if spec.kind == "float" else int(number)
    if not isinstance(value, str):
        raise UsageError(f"{where}: must be a string, not {_describe(value)}")
    if spec.kind == "choice":
        folded = {c.lower(): c for c in spec.choices}
        if value.lower() not in folded:
            raise UsageError(f"{where}: must be one of {', '.join(spec.choices)}, "
                             f"not {_describe(value)}")
        return folded[value.lower()]
    if spec.kind == "file":
        if not value or "\x00" in value:
            raise UsageError(f"{where}: must be a file path")
        try:
            with open(value, "rb"):
                pass
        except OSError as exc:
            raise UsageError(f"{where}: cannot read {value}: {exc.strerror or exc}") from None
        return value
    if spec.kind == "env":
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise UsageError(f"{where}: must name an environment variable, not "
                             f"{_describe(value)}")
        return value
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise UsageError(f"{where}: must be {spec.hint}, not {_describe(value)}")
    return value


def _host_port(netloc: str, where: str, scheme: str) -> Tuple[str, int]:
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})", netloc)
    if not match:
        raise UsageError(f"{where}: {scheme}:// needs HOST:PORT, not {_describe(netloc)}")
    host, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise UsageError(f"{where}: port out of range: {port}")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UsageError(f"{where}: not an IPv6 address: {host}") from None
        host = host[1:-1]
    return host, port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (plain http is allowed to those only)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_destination(url: str, options: Optional[Mapping[str, object]] = None,
                      where: str = "--to") -> DestinationConfig:
    """Check a destination URL and its options; raise ``UsageError`` naming the key."""
    if not isinstance(url, str) or not url:
        raise UsageError(f"{where}: a destination URL is needed, e.g. relp+tls://HOST:2514")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UsageError(f"{where}: a destination URL holds no space or control character")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    address, _, query = rest.partition("?")
    if "@" in address.partition("/")[0]:  # never echoed: it may hold a password
        raise UsageError(f"{where}: a destination URL holds no user name or password: give "
                         "them as options (Kafka: sasl_username and password_env or "
                         "password_file; HEC: token_env or token_file)")
    if not sep or scheme not in KINDS:
        shown = _describe(f"{scheme}://") if sep else "without a scheme"
        raise UsageError(f"{where}: unknown destination {shown}: use "
                         + ", ".join(f"{s}://" for s in KINDS))
    kind = KINDS[scheme]
    if "#" in query or "#" in address:
        raise UsageError(f"{where}: a destination URL has no #fragment")
    given: Dict[str, Tuple[object, bool]] = {}
    for key, text in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key in given:
            raise UsageError(f"{_where_of(where, key, True)}: given twice")
        given[key] = (text, True)
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise UsageError(f"{where}: option names are strings, not {_describe(key)}")
        if key == "url":
            continue
        if key in given:
            raise UsageError(f"{_where_of(where, key, False)}: given both in the URL's query and "
                             "as an option")
        given[key] = (value, False)
    specs = OPTIONS[scheme]
    values: Dict[str, Any] = {}
    for key, (given_value, from_query) in given.items():
        if key not in specs:
            raise UsageError(f"{_where_of(where, key, from_query)}: unknown option for "
                             f"{scheme}:// (known: {', '.join(sorted(specs))})")
        values[key] = _checked(specs[key], given_value, from_query,
                               _where_of(where, key, from_query))
    for key, spec in specs.items():
        values.setdefault(key, spec.default)
    # an option not given is named as the caller would give it: in the URL's query for --to
    wheres = {key: _where_of(where, key, given.get(key, (None, options is None))[1])
              for key in specs}

    brokers: Tuple[str, ...] = ()
    topic = ""
    if kind == "kafka":
        netloc, slash, path = address.partition("/")
        if not slash or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", path) or path in (".", ".."):
            raise UsageError(f"{where}: kafka:// needs a topic: kafka://BROKER[,BROKER]/TOPIC "
                             "(letters, digits, '.', '_', '-')")
        hosts = [_host_port(b, where, scheme) for b in netloc.split(",")]
        brokers = tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts)
        host, port = hosts[0]
        topic = path
        name = f"kafka://{netloc}/{topic}"
    else:
        path = urlsplit(f"x://{address}").path
        netloc = address[: len(address) - len(path)] if path else address
        if path not in ("", "/"):
            raise UsageError(f"{where}: {scheme}:// takes no path, only HOST:PORT")
        host, port = _host_port(netloc, where, scheme)
        name = f"{scheme}://{netloc}"
    if scheme == "hec+http" and not values["allow_http"] and not is_loopback(host):
        raise UsageError(f"{where}: hec+http:// sends the token in clear: only to this machine, "
                         "unless allow_http = true (use hec+https://)")

    secrets: Dict[str, Secret] = {}

    def keep(name: str, secret: Optional[Secret]) -> None:
        if secret is not None:
            secrets[name] = secret

    if kind == "hec":
        keep("token", read_secret(values["token_env"], values["token_file"], "the HEC token",
                                  wheres["token_env"], wheres["token_file"], required=True))
    if "key_passphrase_env" in specs:
        keep("key_passphrase", read_secret(
            values["key_passphrase_env"], values["key_passphrase_file"], "the key's passphrase",
            wheres["key_passphrase_env"], wheres["key_passphrase_file"], required=False))
    if kind == "kafka":
        _check_kafka(values, wheres)
        keep("password", read_secret(values["password_env"], values["password_file"],
                                     "the SASL password", wheres["password_env"],
                                     wheres["password_file"],
                                     required=values["sasl_mechanism"] is not None))
    if "cert" in specs:
        _check_tls_files(values, wheres, secrets.get("key_passphrase"),
                         scheme in TLS_SCHEMES or (kind == "kafka" and values[
                             "security_protocol"] in ("ssl", "sasl_ssl")))
    return DestinationConfig(scheme=scheme, kind=kind, name=name, host=host, port=port,
                             options=values, brokers=brokers, topic=topic, secrets=secrets)


def _check_kafka(values: Dict[str, Any], wheres: Dict[str, str]) -> None:
    sasl = values["security_protocol"].startswith("sasl_")
    if sasl and (values["sasl_mechanism"] is None or values["sasl_username"] is None):
        raise UsageError(f"{wheres['security_protocol']}: {values['security_protocol']} needs "
                         "sasl_mechanism, sasl_username and password_env or password_file")
    for key in ("sasl_mechanism", "sasl_username", "password_env", "password_file"):
        if not sasl and values[key] is not None:
            raise UsageError(f"{wheres[key]}: only with security_protocol sasl_plaintext or "
                             "sasl_ssl")


def _check_tls_files(values: Dict[str, Any], wheres: Dict[str, str],
                     passphrase: Optional[Secret], tls: bool) -> None:
    """The TLS files make a context (PEM certificates, a key that fits, its passphrase)."""
    given = [key for key in ("cacert", "cert", "key", "key_passphrase_env",
                             "key_passphrase_file") if values.get(key) is not None]
    if not tls:
        if given:
            raise UsageError(f"{wheres[given[0]]}: only with TLS")
        return
    if (values["cert"] is None) != (values["key"] is None):
        missing = "key" if values["key"] is None else "cert"
        raise UsageError(f"{wheres[missing]}: a client certificate needs both cert and key")
    if passphrase is not None and values["key"] is None:
        raise UsageError(f"{wheres['key_passphrase_env']}: a passphrase without a key")
    from .tls import client_context  # the ssl module only where TLS is used

    client_context(values["cacert"], values["cert"], values["key"], passphrase,
                   where_cacert=wheres["cacert"], where_key=wheres["key"])

