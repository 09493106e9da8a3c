"""Share URLs: turn a pasted URL into the async URL to post, and judge the URLs the hub sends back.

Pure string work, no network: parsing (sync forms become async, ``?apikey=`` is taken out of the
query), RFC 3986 resolution of ``Location`` headers, origin comparison, and redaction of keys.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from urllib.parse import unquote_plus

from hubasync.core.redaction import REDACTED, redact
from hubasync.errors import UsageError

DEFAULT_PORTS = {"http": 80, "https": 443}
EXPECTED_FORM = "https://HUB/shares/v2/async/SHARE_ID[/INDEX][/count]"

_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?",
    re.DOTALL,
)
# RFC 3986 appendix B; a group is None when its component is absent, "" when present but empty.
_REFERENCE_RE = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):)?(?://(?P<authority>[^/?#]*))?(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
_REG_NAME_RE = re.compile(r"[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*\.?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SEGMENT_RE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+")
_INDEX_RE = re.compile(r"[0-9]+")
_USERINFO_RE = re.compile(r"(://)[^/?#]*@")
_QUERY_PAIR_RE = re.compile(r"(?<=[?&])([^&#=]*)=([^&#]*)")
_MAX_SHOWN = 300


@dataclass(frozen=True)
class ShareUrl:
    """A share to query: where to post, what to ask for, and the key that came with the URL."""

    scheme: str
    host: str
    port: int
    prefix: str
    share_id: str
    index: str | None = None
    count: bool = False
    apikey: str | None = field(default=None, repr=False)
    extra_params: tuple[tuple[str, str], ...] = ()

    @property
    def post_url(self) -> str:
        """The absolute async URL the query is posted to, without a query."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if DEFAULT_PORTS.get(self.scheme) == self.port else f":{self.port}"
        path = f"{self.prefix}/shares/v2/async/{self.share_id}"
        if self.index is not None:
            path += f"/{self.index}"
        if self.count:
            path += "/count"
        return f"{self.scheme}://{host}{port}{path}"

    @property
    def is_notification(self) -> bool:
        return self.index is not None

    def with_count(self, count: bool) -> ShareUrl:
        return replace(self, count=count)

    def display(self) -> str:
        return self.post_url


def parse_share_url(text: str) -> ShareUrl:
    """Parse a share URL in any accepted form; raise UsageError saying what is wrong with it."""
    url = text.strip()
    if not url:
        raise _refuse("it is empty", text)
    if any(char <= " " or char == "\x7f" for char in url):
        raise _refuse("it contains whitespace or a control character", text)
    if any(char > "\x7f" for char in url):
        raise _refuse("it contains a non-ASCII character; percent-encode it", text)
    match = _URL_RE.fullmatch(url)
    if match is None:
        raise _refuse("it has no scheme and host", text)
    scheme = match["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse(f"the scheme is {scheme}, not http or https", text)
    if match["fragment"] is not None:
        raise _refuse("it has a fragment (#...)", text)
    authority = match["authority"]
    if "@" in authority:
        raise _refuse("it has user:password@; give the key with --apikey instead", text)
    try:
        host, port = _split_authority(authority)
    except ValueError as error:
        raise _refuse(str(error), text) from None
    prefix, share_id, index, count = _parse_path(match["path"], scheme, host, port, text)
    apikey, extra = _parse_query(match["query"], text)
    return ShareUrl(
        scheme=scheme,
        host=host,
        port=DEFAULT_PORTS[scheme] if port is None else port,
        prefix=prefix,
        share_id=share_id,
        index=index,
        count=count,
        apikey=apikey,
        extra_params=extra,
    )


def _parse_path(
    path: str, scheme: str, host: str, port: int | None, text: str
) -> tuple[str, str, str | None, bool]:
    segments = path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()
    if "shares" not in segments:
        raise _refuse("the path has no /shares/", text)
    at = segments.index("shares")
    for segment in segments:
        if segment == "":
            raise _refuse("the path has an empty segment (//)", text)
        if segment in (".", ".."):
            raise _refuse("the path has a dot segment (/./ or /../)", text)
        if not _SEGMENT_RE.fullmatch(segment):
            raise _refuse(f"the path segment {_printable(segment)} has unsafe characters", text)
    prefix = "".join(f"/{segment}" for segment in segments[:at])
    tail = segments[at + 1 :]
    if tail[:2] == ["v2", "async"]:
        tail = tail[2:]
    elif tail[:1] in (["v2"], ["async"]):
        tail = tail[1:]
    if not tail or tail[0] == "count":
        raise _refuse("the share id is missing", text)
    share_id, rest = tail[0], tail[1:]
    if rest and rest[0] in ("jobs", "results"):
        share = ShareUrl(scheme, host, port or DEFAULT_PORTS[scheme], prefix, share_id)
        raise UsageError(
            f"{_shown(text)} is a job URL, not a share URL; "
            f"give the share URL instead, e.g. {share.post_url}"
        )
    if len(rest) > 2:
        raise _refuse("too many path segments after the share id", text)
    count = bool(rest) and rest[-1] == "count"
    if count:
        rest = rest[:-1]
    if len(rest) == 2:
        raise _refuse(f"only /count may follow the index, not /{_printable(rest[1])}", text)
    index = rest[0] if rest else None
    if index is not None and not _INDEX_RE.fullmatch(index):
        raise _refuse(
            f"the notification share index {_printable(index)} is not a non-negative integer",
            text,
        )
    return prefix, share_id, index, count


def _parse_query(
    query: str | None, text: str
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    apikeys: list[str] = []
    extra: list[tuple[str, str]] = []
    for piece in (query or "").split("&"):
        if not piece:
            continue
        raw_key, _, raw_value = piece.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        if key.lower() == "apikey":
            apikeys.append(value)
        else:
            extra.append((key, value))
    if len(apikeys) > 1:
        raise _refuse("apikey appears more than once", text)
    if apikeys and not apikeys[0]:
        raise _refuse("its apikey is empty", text)
    return (apikeys[0] if apikeys else None), tuple(extra)


def _split_authority(authority: str) -> tuple[str, int | None]:
    """The lowercased host (IPv6 without brackets) and port of an authority without userinfo."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise ValueError("the IPv6 host has no closing ]")
        host, rest = authority[1:end].lower(), authority[end + 1 :]
        if not _is_ipv6(host):
            raise ValueError(f"invalid IPv6 address {_printable(host)}")
        if rest and not rest.startswith(":"):
            raise ValueError("unexpected text after the IPv6 host")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = authority.partition(":")
        host = host.lower()
        port_text = port_text_ if colon else None
        if not host:
            raise ValueError("the host is empty")
        if not _REG_NAME_RE.fullmatch(host):
            raise ValueError(f"invalid host {_printable(host)}")
    if not port_text:
        return host, None
    if not _PORT_RE.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {_printable(port_text)}")
    return host, int(port_text)


def _is_ipv6(host: str) -> bool:
    if "%" in host:
        return False  # zone ids have no place in a hub's URL
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def resolve_location(request_url: str, location: str) -> str:
    """Resolve a Location header value against the URL of the request that got it (RFC 3986 §5)."""
    base = _REFERENCE_RE.fullmatch(request_url)
    ref = _REFERENCE_RE.fullmatch(location.strip())
    assert base is not None and ref is not None  # the pattern matches any string
    scheme, authority, query = ref["scheme"], ref["authority"], ref["query"]
    if scheme is not None:
        path = _remove_dot_segments(ref["path"])
    else:
        scheme = base["scheme"]
        if authority is not None:
            path = _remove_dot_segments(ref["path"])
        else:
            authority = base["authority"]
            if ref["path"] == "":
                path = base["path"]
                if query is None:
                    query = base["query"]
            elif ref["path"].startswith("/"):
                path = _remove_dot_segments(ref["path"])
            else:
                path = _remove_dot_segments(_merge(base["authority"], base["path"], ref["path"]))
    result = f"{scheme}:" if scheme is not None else ""
    if authority is not None:
        result += f"//{authority}"
    result += path
    if query is not None:
        result += f"?{query}"
    if ref["fragment"] is not None:
        result += f"#{ref['fragment']}"
    return result


def _merge(base_authority: str | None, base_path: str, ref_path: str) -> str:
    if base_authority is not None and base_path == "":
        return f"/{ref_path}"
    return base_path[: base_path.rfind("/") + 1] + ref_path


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    while path:
        if path.startswith("../"):
            path = path[3:]
        elif path.startswith(("./", "/./")):
            path = path[2:]
        elif path == "/.":
            path = "/"
        elif path.startswith("/../") or path == "/..":
            path = "/" + path[4:]
            if output:
                output.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            end = path.find("/", start)
            end = len(path) if end < 0 else end
            output.append(path[:end])
            path = path[end:]
    return "".join(output)


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL, defaults filled in; ValueError if it has none."""
    match = _REFERENCE_RE.fullmatch(url.strip())
    assert match is not None  # the pattern matches any string
    scheme, authority = match["scheme"], match["authority"]
    if scheme is None or authority is None:
        raise ValueError("not an absolute URL with a host")
    scheme = scheme.lower()
    host, port = _split_authority(authority.rpartition("@")[2])
    if ":" in host:
        host = ipaddress.IPv6Address(host).compressed
    if port is None:
        if scheme not in DEFAULT_PORTS:
            raise ValueError(f"no default port for the scheme {scheme}")
        port = DEFAULT_PORTS[scheme]
    return scheme, host, port


def same_origin(a: str, b: str) -> bool:
    """True when both URLs have the same scheme, host and port; False if either has no origin."""
    try:
        return origin_of(a) == origin_of(b)
    except ValueError:
        return False


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (IPv6 with or without brackets); no DNS lookup."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _refuse(reason: str, text: str) -> UsageError:
    return UsageError(f"not a share URL ({reason}): {_shown(text)}; expected {EXPECTED_FORM}")


def _shown(text: str) -> str:
    """The user's URL as it may appear in a message: no credentials, printable, bounded."""
    shown = _USERINFO_RE.sub(rf"\1{REDACTED}@", text)
    shown = _QUERY_PAIR_RE.sub(_redact_apikey_pair, shown)
    return _printable(redact(shown), _MAX_SHOWN)


def _redact_apikey_pair(match: re.Match[str]) -> str:
    if unquote_plus(match[1]).strip().lower() == "apikey":
        return f"{match[1]}={REDACTED}"
    return match[0]


def _printable(text: str, limit: int = 40) -> str:
    """Text for a one-line message: control and non-ASCII characters escaped, long text cut."""
    shown = "".join(char if " " <= char < "\x7f" else ascii(char)[1:-1] for char in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
