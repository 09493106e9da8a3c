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

# scheme://userinfo@host:port/rest, every part but the host optional.
_PROXY_URL_RE = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?:(?P<userinfo>[^/?#]*)@)?"  # up to the authority's last @, as urllib reads it
    r"(?P<host>\[[^\]/?#]*\]|[^:/?#\[\]@]*)"
    r"(?::(?P<port>[^/?#]*))?"
    r"(?P<rest>[/?#].*)?",
    re.DOTALL,
)


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
        """What must never be printed: the password and the Basic credential."""
        found: list[str] = []
        if self.password:
            found.append(self.password)
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
    """A proxy URL as it may appear in a message: its userinfo hidden."""
    return re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?)[^/?#]*@", rf"\1{REDACTED}@", text)


def parse_proxy_url(text: str, source: str = "--proxy") -> Proxy:
    """The proxy of ``http://[user:pass@]host[:port][/]`` or ``host:port``; UsageError else.

    ``source`` names where the URL came from, for the message.
    """
    match = _PROXY_URL_RE.fullmatch(text.strip())
    if match is None or not match["host"]:
        raise UsageError(f"{source}: not a proxy URL: {_shown(text)} (expected "
                         "http://[USER:PASSWORD@]HOST:PORT)")
    scheme = (match["scheme"] or "http").lower()
    if scheme != "http":
        raise UsageError(f"{source}: proxy scheme {scheme}:// is not supported (only http://): "
                         f"{_shown(text)}")
    if match["rest"] not in (None, "", "/"):
        raise UsageError(f"{source}: a proxy URL has no path, query or fragment: {_shown(text)}")
    host = match["host"]
    if host.startswith("["):
        try:
            host = ipaddress.IPv6Address(host[1:-1]).compressed
        except ValueError:
            raise UsageError(f"{source}: bad IPv6 address in {_shown(text)}") from None
    port = DEFAULT_PROXY_PORT
    if match["port"]:
        if not match["port"].isdigit() or not 0 < int(match["port"]) < 65536:
            raise UsageError(f"{source}: bad port in {_shown(text)}")
        port = int(match["port"])
    username = password = None
    if match["userinfo"] is not None:
        user, colon, secret = match["userinfo"].partition(":")
        username = unquote(user)
        password = unquote(secret) if colon else None
    return Proxy(host.lower(), port, username, password)


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
        match = _PROXY_URL_RE.fullmatch(url.strip())
        if match is None or match["userinfo"] is None:
            continue
        user, colon, password = match["userinfo"].partition(":")
        found.extend(Proxy("", 0, unquote(user), unquote(password) if colon else None).secrets)
    return tuple(found)
