"""Which HTTP proxy, if any, a connection to the hub goes through: decisions only, no sockets.

The proxy comes from a setting (``--proxy URL``, ``Client(proxy=...)``) or, when there is
none, from the environment exactly as :mod:`urllib.request` reads it (``https_proxy``,
``http_proxy``, ``no_proxy``; lower case wins; ``HTTP_PROXY`` is ignored when
``REQUEST_METHOD`` is set). An empty setting means no proxy at all. The answer is a
:class:`ProxyRoute` that the transport follows.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import urllib.request
from dataclasses import dataclass, field
from typing import Mapping, Optional
from urllib.parse import quote, unquote

from hubasync.core.redaction import REDACTED
from hubasync.errors import UsageError

DEFAULT_PROXY_PORT = 80

MAX_PORT = 65535
# [scheme://][userinfo@]host[:port][/]. A proxy URL has no path, query or fragment, so the
# userinfo is everything up to the LAST "@": a password may hold "/", "?", "#" and "@" as they
# are, or percent-escaped. Inside it, the first ":" ends the user name.
_SCHEME_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_PORT_RE = re.compile(
    r"(?P<host>\[[^\]/?#@]*\]|[^:/?#\[\]@]*)"
    r"(?::(?P<port>[^/?#]*))?"
    r"(?P<rest>[/?#].*)?",
    re.DOTALL,
)


@dataclass(frozen=True)
class _Parts:
    scheme: Optional[str]
    userinfo: Optional[str]  # as written, percent escapes and all
    host: str
    port: Optional[str]
    rest: Optional[str]

    @property
    def credentials(self) -> tuple[Optional[str], Optional[str]]:
        """The user name and password, percent escapes decoded (None where absent)."""
        if self.userinfo is None:
            return None, None
        user, colon, password = self.userinfo.partition(":")
        return unquote(user), unquote(password) if colon else None


def _split(text: str) -> Optional[_Parts]:
    """The parts of a proxy URL, or None when what follows the userinfo is no host[:port]."""
    scheme = _SCHEME_RE.match(text)
    authority = text[scheme.end():] if scheme else text
    userinfo, at, host_port = authority.rpartition("@")
    match = _HOST_PORT_RE.fullmatch(host_port)
    if match is None:
        return None
    return _Parts(scheme["scheme"] if scheme else None, userinfo if at else None, match["host"],
                  match["port"], match["rest"])


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: where it listens and the credentials it wants, if any."""

    host: str
    port: int
    username: Optional[str] = field(default=None, repr=False)
    password: Optional[str] = field(default=None, repr=False)

    def __str__(self) -> str:
        """``host:port``, with ``user:***@`` in front when there are credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{quote(self.username, safe='')}:{REDACTED}@" if self.username is not None else ""
        return f"{user}{host}:{self.port}"

    @property
    def authorization(self) -> Optional[str]:
        """The ``Proxy-Authorization`` value for the credentials, or None without any."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed: the password, ``user:password``, and the Basic
        credential (``redact`` also takes out their URL-quoted and JSON-escaped forms)."""
        found: list[str] = []
        if self.password:
            found.extend((self.password, f"{self.username}:{self.password}"))
        if self.authorization is not None:
            found.append(self.authorization.partition(" ")[2])
        return tuple(found)


@dataclass(frozen=True)
class ProxyRoute:
    """How to reach the hub: through ``proxy``, or directly (``proxy`` None), and why."""

    proxy: Optional[Proxy]
    reason: str

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.proxy.secrets if self.proxy is not None else ()

    def describe(self) -> str:
        """One phrase for ``--debug``: ``through proxy H:P (why)`` or ``direct (why)``."""
        if self.proxy is None:
            return f"direct ({self.reason})"
        return f"through proxy {self.proxy} ({self.reason})"


DIRECT = ProxyRoute(None, "no proxy configured")


def _shown(text: str) -> str:
    """A proxy URL as it may appear in a message: its userinfo (up to the last @) hidden."""
    return re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?).*@", rf"\1{REDACTED}@", text,
                  flags=re.DOTALL)


def parse_proxy_url(text: str, source: str = "--proxy") -> Proxy:
    """The proxy of ``http://[user:pass@]host[:port][/]`` or ``host:port``; UsageError else.

    The userinfo is everything before the last ``@`` (a proxy URL has no path, so a password
    may hold ``/ ? # @`` unescaped); the user name ends at its first ``:``; both are
    percent-decoded. The port is 1 to 65535. ``source`` names where the URL came from, for
    the message, which never shows the userinfo.
    """
    parts = _split(text.strip())
    if parts is None or not parts.host:
        raise UsageError(f"{source}: not a proxy URL: {_shown(text)} (expected "
                         "http://[USER:PASSWORD@]HOST:PORT)")
    scheme = (parts.scheme or "http").lower()
    if scheme != "http":
        raise UsageError(f"{source}: proxy scheme {scheme}:// is not supported (only http://): "
                         f"{_shown(text)}")
    if parts.rest not in (None, "", "/"):
        raise UsageError(f"{source}: a proxy URL has no path, query or fragment: {_shown(text)}")
    host = parts.host
    if host.startswith("["):
        try:
            host = ipaddress.IPv6Address(host[1:-1]).compressed
        except ValueError:
            raise UsageError(f"{source}: bad IPv6 address in {_shown(text)}") from None
    port = DEFAULT_PROXY_PORT
    if parts.port:
        port = _port(parts.port, source, text)
    username, password = parts.credentials
    return Proxy(host.lower(), port, username, password)


def _port(text: str, source: str, url: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 0 < int(text) <= MAX_PORT:
        shown = text if re.fullmatch(r"[0-9]{1,20}", text) else "that"
        raise UsageError(f"{source}: the port {shown} is not a number from 1 to {MAX_PORT}: "
                         f"{_shown(url)}")
    return int(text)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def route_for(setting: Optional[str], scheme: str, host: str, port: int,
              environ_proxies: Optional[Mapping[str, str]] = None) -> ProxyRoute:
    """The route to the hub at ``scheme://host:port``.

    ``setting``: None reads the environment (or ``environ_proxies``, a mapping as
    :func:`urllib.request.getproxies_environment` returns), ``""`` means no proxy, anything
    else is the proxy's URL and wins over the environment (``no_proxy`` included).
    """
    if setting is not None:
        if not setting.strip():
            return ProxyRoute(None, "proxy disabled")
        return ProxyRoute(parse_proxy_url(setting), "set explicitly")
    proxies = dict(urllib.request.getproxies_environment() if environ_proxies is None
                   else environ_proxies)
    url = proxies.get(scheme)
    if not url:
        return DIRECT
    # Documented nowhere but stable since Python 3.0, and what urllib itself uses.
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if bypass(_netloc(host, port), proxies):
        return ProxyRoute(None, f"no_proxy matches {host}")
    variable = f"{scheme}_proxy"
    return ProxyRoute(parse_proxy_url(url, f"{variable} in the environment"), variable)


def secrets_of(setting: Optional[str]) -> tuple[str, ...]:
    """Every proxy secret that ``setting`` (or, for None, the environment) could bring.

    Used to redact what is printed, even when the route was never worked out.
    """
    if setting is not None:
        urls = [setting] if setting.strip() else []
    else:
        urls = [value for key, value in urllib.request.getproxies_environment().items()
                if key != "no"]
    found: list[str] = []
    for url in urls:
        parts = _split(url.strip())
        if parts is None or parts.userinfo is None:
            continue
        user, password = parts.credentials
        found.extend(Proxy("", 0, user, password).secrets)
        written_password = parts.userinfo.partition(":")[2]
        if written_password:  # as written in the URL, escapes and all
            found.extend((written_password, parts.userinfo))
    return tuple(dict.fromkeys(found))
