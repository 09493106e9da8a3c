"""Tests of hubasync.urls: share URL parsing, Location resolution, origins and redaction."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from urllib.parse import quote, urljoin

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubasync.core.redaction import redact
from hubasync.core.urls import (
    ShareUrl,
    is_loopback,
    origin_of,
    parse_share_url,
    resolve_location,
    same_origin,
)
from hubasync.errors import UsageError

HUB = "https://hub.example.com"
ASYNC = f"{HUB}/shares/v2/async"

# (pasted URL, post_url, share_id, index, count, apikey, extra params)
ACCEPTED: list[tuple[str, str, str, str | None, bool, str | None, tuple[tuple[str, str], ...]]] = [
    # the seed's usage examples, placeholders as written and filled in
    (f"{ASYNC}/:id", f"{ASYNC}/:id", ":id", None, False, None, ()),
    (f"{ASYNC}/:id/count", f"{ASYNC}/:id/count", ":id", None, True, None, ()),
    (f"{ASYNC}/abc", f"{ASYNC}/abc", "abc", None, False, None, ()),
    (f"{ASYNC}/abc/0", f"{ASYNC}/abc/0", "abc", "0", False, None, ()),
    (f"{ASYNC}/abc/count", f"{ASYNC}/abc/count", "abc", None, True, None, ()),
    (f"{ASYNC}/abc/12/count", f"{ASYNC}/abc/12/count", "abc", "12", True, None, ()),
    # trailing slash
    (f"{ASYNC}/abc/", f"{ASYNC}/abc", "abc", None, False, None, ()),
    (f"{ASYNC}/abc/1/count/", f"{ASYNC}/abc/1/count", "abc", "1", True, None, ()),
    # sync forms, as the hub's UI shows them
    (f"{HUB}/shares/v2/abc", f"{ASYNC}/abc", "abc", None, False, None, ()),
    (f"{HUB}/shares/v2/abc/3", f"{ASYNC}/abc/3", "abc", "3", False, None, ()),
    (f"{HUB}/shares/v2/abc/count", f"{ASYNC}/abc/count", "abc", None, True, None, ()),
    (f"{HUB}/shares/v2/abc/3/count", f"{ASYNC}/abc/3/count", "abc", "3", True, None, ()),
    (f"{HUB}/shares/abc", f"{ASYNC}/abc", "abc", None, False, None, ()),
    (f"{HUB}/shares/abc/0", f"{ASYNC}/abc/0", "abc", "0", False, None, ()),
    (f"{HUB}/shares/abc/count/", f"{ASYNC}/abc/count", "abc", None, True, None, ()),
    (f"{HUB}/shares/async/abc", f"{ASYNC}/abc", "abc", None, False, None, ()),
    # apikey in the query, alone and among other parameters
    (f"{HUB}/shares/v2/abc?apikey=K3y", f"{ASYNC}/abc", "abc", None, False, "K3y", ()),
    (
        f"{HUB}/shares/v2/abc?limit=10&apikey=K%2By&filter=%22feed%22%3Dx+y",
        f"{ASYNC}/abc",
        "abc",
        None,
        False,
        "K+y",
        (("limit", "10"), ("filter", '"feed"=x y')),
    ),
    (f"{ASYNC}/abc/?APIKEY=k&reverse", f"{ASYNC}/abc", "abc", None, False, "k", (("reverse", ""),)),
    (f"{ASYNC}/abc?&&sort=_id&", f"{ASYNC}/abc", "abc", None, False, None, (("sort", "_id"),)),
    (f"{ASYNC}/abc?", f"{ASYNC}/abc", "abc", None, False, None, ()),
    # scheme and host case, ports, IPv4 and IPv6 hosts, prefixes
    ("HTTPS://HUB.Example.COM/shares/v2/async/AbC", f"{ASYNC}/AbC", "AbC", None, False, None, ()),
    ("https://hub.example.com:443/shares/abc", f"{ASYNC}/abc", "abc", None, False, None, ()),
    ("http://hub:80/shares/abc", "http://hub/shares/v2/async/abc", "abc", None, False, None, ()),
    ("http://hub:443/shares/a", "http://hub:443/shares/v2/async/a", "a", None, False, None, ()),
    ("https://hub:/shares/a", "https://hub/shares/v2/async/a", "a", None, False, None, ()),
    ("http://127.0.0.1:8080/shares/a", "http://127.0.0.1:8080/shares/v2/async/a", "a", None, False,
     None, ()),
    ("http://[::1]:8080/shares/a", "http://[::1]:8080/shares/v2/async/a", "a", None, False, None,
     ()),
    ("https://[FE80::1]/shares/a/2", "https://[fe80::1]/shares/v2/async/a/2", "a", "2", False, None,
     ()),
    (f"{HUB}/hub/shares/v2/abc", f"{HUB}/hub/shares/v2/async/abc", "abc", None, False, None, ()),
    (f"{HUB}/a/b/shares/v2/async/abc/count", f"{HUB}/a/b/shares/v2/async/abc/count", "abc", None,
     True, None, ()),
    # share ids of any URL-safe characters, kept as written
    (f"{ASYNC}/a%20b~c_d.e-f", f"{ASYNC}/a%20b~c_d.e-f", "a%20b~c_d.e-f", None, False, None, ()),
    (f"{ASYNC}/123", f"{ASYNC}/123", "123", None, False, None, ()),
    (f"  {ASYNC}/abc\n", f"{ASYNC}/abc", "abc", None, False, None, ()),
]


@pytest.mark.parametrize(("text", "post_url", "share_id", "index", "count", "apikey", "extra"),
                         ACCEPTED)
def test_accepted_forms(
    text: str,
    post_url: str,
    share_id: str,
    index: str | None,
    count: bool,
    apikey: str | None,
    extra: tuple[tuple[str, str], ...],
) -> None:
    share = parse_share_url(text)
    assert share.post_url == post_url
    assert share.display() == post_url
    assert (share.share_id, share.index, share.count) == (share_id, index, count)
    assert share.is_notification == (index is not None)
    assert share.apikey == apikey
    assert share.extra_params == extra
    assert "apikey" not in share.post_url.lower()
    assert "apikey" not in repr(share)


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "prefix"),
    [
        ("HTTPS://HUB.Example.COM/shares/a", "https", "hub.example.com", 443, ""),
        ("http://hub/shares/a", "http", "hub", 80, ""),
        ("https://hub:8443/shares/a", "https", "hub", 8443, ""),
        ("http://[2001:DB8::1]:81/x/shares/a", "http", "2001:db8::1", 81, "/x"),
        ("https://10.0.0.1/hub/shares/a", "https", "10.0.0.1", 443, "/hub"),
    ],
)
def test_parts(text: str, scheme: str, host: str, port: int, prefix: str) -> None:
    share = parse_share_url(text)
    assert (share.scheme, share.host, share.port, share.prefix) == (scheme, host, port, prefix)
    assert origin_of(share.post_url) == (scheme, host, port)


REFUSED = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("hub.example.com/shares/v2/async/abc", "no scheme and host"),
    ("/shares/v2/async/abc", "no scheme and host"),
    ("https:/hub/shares/abc", "no scheme and host"),
    ("ftp://hub/shares/abc", "the scheme is ftp"),
    ("file:///shares/abc", "the scheme is file"),
    ("https:///shares/abc", "the host is empty"),
    ("https://:8080/shares/abc", "the host is empty"),
    ("https://user:pw@hub/shares/abc", "user:password@"),
    (f"{ASYNC}/abc#frag", "fragment"),
    (f"{ASYNC}", "share id is missing"),
    (f"{ASYNC}/", "share id is missing"),
    (f"{HUB}/shares", "share id is missing"),
    (f"{HUB}/shares/v2", "share id is missing"),
    (f"{ASYNC}/count", "share id is missing"),
    (f"{HUB}/", "no /shares/"),
    (HUB, "no /shares/"),
    (f"{HUB}/api/v2/abc", "no /shares/"),
    (f"{ASYNC}/abc/0/count/x", "too many path segments"),
    (f"{ASYNC}/abc/0/1", "only /count may follow the index"),
    (f"{ASYNC}/abc/:index", "index :index is not a non-negative integer"),
    (f"{ASYNC}/abc/-1", "index -1 is not a non-negative integer"),
    (f"{ASYNC}/abc/x/count", "index x is not a non-negative integer"),
    (f"{ASYNC}/abc/1.5", "index 1.5 is not a non-negative integer"),
    (f"{ASYNC}//abc", "empty segment"),
    (f"{ASYNC}/abc//", "empty segment"),
    (f"{ASYNC}/../abc", "dot segment"),
    (f"{ASYNC}/./abc", "dot segment"),
    (f"{ASYNC}/a<b", "unsafe characters"),
    (f"{ASYNC}/a%zzb", "unsafe characters"),
    (f"{ASYNC}/a\\b", "unsafe characters"),
    ("https://hub:0/shares/abc", "invalid port 0"),
    ("https://hub:65536/shares/abc", "invalid port 65536"),
    ("https://hub:https/shares/abc", "invalid port https"),
    ("https://hub:1:2/shares/abc", "invalid port 1:2"),
    ("https://[::1/shares/abc", "no closing ]"),
    ("https://[nope]/shares/abc", "invalid IPv6 address nope"),
    ("https://[fe80::1%25eth0]/shares/abc", "invalid IPv6 address"),
    ("https://[::1]x/shares/abc", "unexpected text after the IPv6 host"),
    ("https://hu b/shares/abc", "whitespace or a control character"),
    (f"{ASYNC}/a\tb", "whitespace or a control character"),
    (f"{ASYNC}/a\x00b", "whitespace or a control character"),
    (f"{ASYNC}/a\x7fb", "whitespace or a control character"),
    (f"{ASYNC}/\u00e9t\u00e9", "non-ASCII"),
    ("https://hub..x/shares/abc", "invalid host"),
    ("https://hub_$/shares/abc", "invalid host"),
    (f"{ASYNC}/abc?apikey=", "apikey is empty"),
    (f"{ASYNC}/abc?apikey", "apikey is empty"),
    (f"{ASYNC}/abc?apikey=SECRET1&apikey=SECRET2", "apikey appears more than once"),
    (f"{ASYNC}/abc?apikey=SECRET1&ApiKey=SECRET2", "apikey appears more than once"),
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refused_forms(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_share_url(text)
    message = str(caught.value)
    assert reason in message
    assert "expected https://HUB/shares/v2/async/SHARE_ID[/INDEX][/count]" in message
    assert "\n" not in message and "\t" not in message and "\x00" not in message


@pytest.mark.parametrize(
    ("text", "share_url"),
    [
        (f"{ASYNC}/abc/jobs/J1", f"{ASYNC}/abc"),
        (f"{ASYNC}/abc/results/J1", f"{ASYNC}/abc"),
        (f"{HUB}/hub/shares/v2/async/abc/jobs/J1?apikey=SECRET", f"{HUB}/hub/shares/v2/async/abc"),
        ("http://hub:8080/shares/v2/async/abc/results/J1/", "http://hub:8080/shares/v2/async/abc"),
    ],
)
def test_job_urls_are_refused_with_the_share_url(text: str, share_url: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_share_url(text)
    message = str(caught.value)
    assert "job URL" in message
    assert message.endswith(f"give the share URL instead, e.g. {share_url}")
    assert "SECRET" not in message


@pytest.mark.parametrize(
    "text",
    [
        f"{ASYNC}/abc#x?apikey=SECRET",
        "https://user:SECRET@hub/shares/abc",
        "https://SECRET@hub/shares/abc",
        f"{ASYNC}/abc?apikey=SECRET&apikey=SECRET",
        f"{ASYNC}/abc/x?apikey=SECRET",
        f"{ASYNC}/abc/x?api%6Bey=SECRET",
        f"{ASYNC}/abc/x?APIKEY=SECRET",
        f"{ASYNC}/abc/x?apikey=SEC RET",
        f"{ASYNC}/abc/x?limit=1&apikey=SECRET&x=1",
        "ftp://hub/x?apikey=SECRET",
        f"{ASYNC}/abc?apikey=SECRET&apikey=",
    ],
)
def test_refusals_never_echo_the_key(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_share_url(text)
    assert "SEC" not in str(caught.value)
    assert "RET" not in str(caught.value)


def test_long_urls_are_shortened_in_messages() -> None:
    with pytest.raises(UsageError) as caught:
        parse_share_url(f"{ASYNC}/abc/x/" + "y" * 5000)
    assert len(str(caught.value)) < 500


def test_with_count_switches_between_count_and_events() -> None:
    share = parse_share_url(f"{ASYNC}/abc/2?apikey=K&limit=5")
    count = share.with_count(True)
    assert count.post_url == f"{ASYNC}/abc/2/count"
    assert count.with_count(False) == share
    assert (count.apikey, count.extra_params) == ("K", (("limit", "5"),))


def test_the_apikey_never_shows_in_repr_or_str() -> None:
    share = parse_share_url(f"{ASYNC}/abc?apikey=TOPSECRETKEY")
    assert share.apikey == "TOPSECRETKEY"
    for shown in (repr(share), str(share), share.post_url, share.display(), f"{share}"):
        assert "TOPSECRETKEY" not in shown


# Location resolution: the RFC 3986 §5.4 examples, then the cases the hub gives.
RFC_BASE = "http://a/b/c/d;p?q"
RESOLVED = [
    (RFC_BASE, "g:h", "g:h"),
    (RFC_BASE, "g", "http://a/b/c/g"),
    (RFC_BASE, "./g", "http://a/b/c/g"),
    (RFC_BASE, "g/", "http://a/b/c/g/"),
    (RFC_BASE, "/g", "http://a/g"),
    (RFC_BASE, "//g", "http://g"),
    (RFC_BASE, "?y", "http://a/b/c/d;p?y"),
    (RFC_BASE, "g?y", "http://a/b/c/g?y"),
    (RFC_BASE, "#s", "http://a/b/c/d;p?q#s"),
    (RFC_BASE, "g#s", "http://a/b/c/g#s"),
    (RFC_BASE, "g?y#s", "http://a/b/c/g?y#s"),
    (RFC_BASE, ";x", "http://a/b/c/;x"),
    (RFC_BASE, "g;x", "http://a/b/c/g;x"),
    (RFC_BASE, "g;x?y#s", "http://a/b/c/g;x?y#s"),
    (RFC_BASE, "", "http://a/b/c/d;p?q"),
    (RFC_BASE, ".", "http://a/b/c/"),
    (RFC_BASE, "./", "http://a/b/c/"),
    (RFC_BASE, "..", "http://a/b/"),
    (RFC_BASE, "../", "http://a/b/"),
    (RFC_BASE, "../g", "http://a/b/g"),
    (RFC_BASE, "../..", "http://a/"),
    (RFC_BASE, "../../", "http://a/"),
    (RFC_BASE, "../../g", "http://a/g"),
    (RFC_BASE, "../../../g", "http://a/g"),
    (RFC_BASE, "../../../../g", "http://a/g"),
    (RFC_BASE, "/./g", "http://a/g"),
    (RFC_BASE, "/../g", "http://a/g"),
    (RFC_BASE, "g.", "http://a/b/c/g."),
    (RFC_BASE, ".g", "http://a/b/c/.g"),
    (RFC_BASE, "g..", "http://a/b/c/g.."),
    (RFC_BASE, "..g", "http://a/b/c/..g"),
    (RFC_BASE, "./../g", "http://a/b/g"),
    (RFC_BASE, "./g/.", "http://a/b/c/g/"),
    (RFC_BASE, "g/./h", "http://a/b/c/g/h"),
    (RFC_BASE, "g/../h", "http://a/b/c/h"),
    (RFC_BASE, "g;x=1/./y", "http://a/b/c/g;x=1/y"),
    (RFC_BASE, "g;x=1/../y", "http://a/b/c/y"),
    (RFC_BASE, "g?y/./x", "http://a/b/c/g?y/./x"),
    (RFC_BASE, "g?y/../x", "http://a/b/c/g?y/../x"),
    (RFC_BASE, "g#s/./x", "http://a/b/c/g#s/./x"),
    (RFC_BASE, "g#s/../x", "http://a/b/c/g#s/../x"),
    (RFC_BASE, "http:g", "http:g"),
    # the hub's answers to a POST and to a status poll
    (f"{ASYNC}/abc", "/shares/v2/async/abc/jobs/J", f"{ASYNC}/abc/jobs/J"),
    (f"{ASYNC}/abc", "abc/jobs/J", f"{ASYNC}/abc/jobs/J"),
    (f"{ASYNC}/abc?limit=10", "abc/jobs/J", f"{ASYNC}/abc/jobs/J"),
    (f"{ASYNC}/abc/jobs/J", "../results/J", f"{ASYNC}/abc/results/J"),
    (f"{ASYNC}/abc/jobs/J", "J", f"{ASYNC}/abc/jobs/J"),
    (f"{ASYNC}/abc", "../x", f"{HUB}/shares/v2/x"),
    (f"{ASYNC}/abc", "//other.example/x", "https://other.example/x"),
    (f"{ASYNC}/abc", "?q", f"{ASYNC}/abc?q"),
    (f"{ASYNC}/abc", "http://other/x", "http://other/x"),
    (f"{ASYNC}/abc", " abc/jobs/J ", f"{ASYNC}/abc/jobs/J"),
    ("http://[::1]:8080/hub/shares/v2/async/abc", "abc/jobs/J",
     "http://[::1]:8080/hub/shares/v2/async/abc/jobs/J"),
    ("http://hub", "jobs/J", "http://hub/jobs/J"),
]


@pytest.mark.parametrize(("base", "location", "expected"), RESOLVED)
def test_resolve_location(base: str, location: str, expected: str) -> None:
    assert resolve_location(base, location) == expected


@pytest.mark.parametrize(("base", "location", "expected"), RESOLVED)
def test_resolve_location_agrees_with_urljoin(base: str, location: str, expected: str) -> None:
    if location == "http:g" or location != location.strip():
        pytest.skip("urljoin resolves these differently (non-strict scheme, no trimming)")
    assert urljoin(base, location) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://hub/x", "https://hub:443/y", True),
        ("http://hub/x", "http://hub:80/y?q", True),
        ("https://HUB.example.com/x", "HTTPS://hub.EXAMPLE.com/y", True),
        ("https://hub/x", "http://hub/x", False),
        ("https://hub/x", "https://hub:8443/x", False),
        ("http://hub:443/x", "https://hub/x", False),
        ("https://hub/x", "https://hub2/x", False),
        ("https://hub/x", "https://evil.hub/x", False),
        ("http://[::1]/x", "http://[::1]:80/y", True),
        ("http://[::1]/x", "http://[0:0:0:0:0:0:0:1]/y", True),
        ("http://[2001:DB8::1]/x", "http://[2001:db8::1]/y", True),
        ("http://[::1]/x", "http://127.0.0.1/x", False),
        ("https://user@hub/x", "https://hub/x", True),
        ("https://hub/x", "/x", False),
        ("https://hub/x", "//hub/x", False),
        ("https://hub:99999/x", "https://hub:99999/x", False),
        ("ftp://hub/x", "ftp://hub/x", False),
        ("ftp://hub:21/x", "ftp://hub:21/x", True),
    ],
)
def test_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same
    assert same_origin(b, a) is same


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Hub/x", ("https", "hub", 443)),
        ("HTTP://hub:8080", ("http", "hub", 8080)),
        ("http://[::FFFF:127.0.0.1]/", ("http", "::ffff:7f00:1", 80)),
    ],
)
def test_origin_of(url: str, origin: tuple[str, str, int]) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["/relative", "abc/jobs/J", "https://hub:x/", "mailto:x@y"])
def test_origin_of_refuses_urls_without_one(url: str) -> None:
    with pytest.raises(ValueError):
        origin_of(url)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("::2", False),
        ("localhost.example.com", False),
        ("hub.example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("GET https://hub/shares/abc?apikey=K1&x=2", None,
         "GET https://hub/shares/abc?apikey=REDACTED&x=2"),
        ("see https://h/s?a=1&APIKEY=k#f and more", None,
         "see https://h/s?a=1&apikey=REDACTED#f and more"),
        ('"https://h/s?apikey=k" and https://h/t?apikey=j', None,
         '"https://h/s?apikey=REDACTED" and https://h/t?apikey=REDACTED'),
        ("Authorization: token s3cr3t", "s3cr3t", "Authorization: token REDACTED"),
        ("a s3cr3t b s3cr3t", "s3cr3t", "a REDACTED b REDACTED"),
        ("key a%2Fb or a+b or a/b", "a/b", "key REDACTED or a+b or REDACTED"),
        ("key a%20b or a+b", "a b", "key REDACTED or REDACTED"),
        ("nothing here", "", "nothing here"),
        ("nothing here", None, "nothing here"),
        ("RED", "RED", "REDACTED"),
    ],
)
def test_redact(text: str, secret: str | None, expected: str) -> None:
    assert redact(text, secret) == expected


# Property tests.

@given(st.text())
def test_parse_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        parsed = parse_share_url(text)
    except UsageError:
        return
    # what parses is a share: its own async URL parses back to the same share
    again = parse_share_url(parsed.post_url)
    assert (again.post_url, again.share_id, again.index, again.count) == (
        parsed.post_url, parsed.share_id, parsed.index, parsed.count)


URL_PIECES = st.sampled_from(
    [
        "https://", "http://", "HTTP://", "hub", "[::1]", "[", "]", ":", ":8080", "@", "/", "//",
        "shares", "v2", "async", "abc", "0", "count", "jobs", "results", "?", "&", "=", "#",
        "apikey", "apikey=K", "%", "%2", "%41", ".", "..", " ", "\x00", "\u00e9", "-1", "\\",
    ]
)


@given(st.lists(URL_PIECES, max_size=20).map("".join))
def test_parse_url_like_text_never_raises_anything_but_usage_error(text: str) -> None:
    try:
        share = parse_share_url(text)
    except UsageError as error:
        assert "apikey=K" not in str(error)
    else:
        assert parse_share_url(share.post_url).post_url == share.post_url


UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
SEGMENT_CHARS = UNRESERVED + "!$&'()*+,;=:@"
RESERVED_WORDS = {"shares", "v2", "async", "count", "jobs", "results", ".", ".."}

segments = st.one_of(
    st.text(SEGMENT_CHARS, min_size=1, max_size=12),
    st.builds(lambda a, b: f"{a}%{b:02X}", st.text(UNRESERVED, max_size=4), st.integers(0, 255)),
).filter(lambda s: s not in RESERVED_WORDS)
labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
reg_names = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4s = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6s = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
param_text = st.text(st.characters(codec="utf-8"), max_size=10)
param_keys = param_text.filter(lambda k: k != "" and k.lower() != "apikey")
apikeys = st.text(UNRESERVED, min_size=1, max_size=40)


@st.composite
def share_urls(draw: st.DrawFn) -> tuple[str, ShareUrl]:
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.one_of(reg_names, ipv4s, ipv6s))
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    prefix = "".join(f"/{s}" for s in draw(st.lists(segments, max_size=3)))
    share_id = draw(segments)
    index = draw(st.one_of(st.none(), st.integers(0, 10**6).map(str)))
    count = draw(st.booleans())
    apikey = draw(st.one_of(st.none(), apikeys))
    extra = draw(st.lists(st.tuples(param_keys, param_text), max_size=4))
    form = draw(st.sampled_from(["/shares/v2/async/", "/shares/v2/", "/shares/"]))
    slash = draw(st.sampled_from(["", "/"]))

    written_scheme = draw(st.sampled_from([scheme, scheme.upper()]))
    written_host = f"[{host}]" if ":" in host else host
    written_host = draw(st.sampled_from([written_host, written_host.upper()]))
    url = f"{written_scheme}://{written_host}" + ("" if port is None else f":{port}")
    url += f"{prefix}{form}{share_id}"
    url += "" if index is None else f"/{index}"
    url += ("/count" if count else "") + slash
    query = [(quote(k, safe=""), quote(v, safe="")) for k, v in extra]
    if apikey is not None:
        query.insert(draw(st.integers(0, len(query))), ("apikey", apikey))
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query)
    default = 443 if scheme == "https" else 80
    share = ShareUrl(
        scheme=scheme,
        host=host,
        port=default if port is None else port,
        prefix=prefix,
        share_id=share_id,
        index=index,
        count=count,
        apikey=apikey,
        extra_params=tuple(extra),
    )
    return url, share


@given(share_urls())
def test_generated_share_urls_round_trip(case: tuple[str, ShareUrl]) -> None:
    url, expected = case
    share = parse_share_url(url)
    assert share == expected
    host = f"[{expected.host}]" if ":" in expected.host else expected.host
    default = 443 if expected.scheme == "https" else 80
    port = "" if expected.port == default else f":{expected.port}"
    tail = ("" if expected.index is None else f"/{expected.index}") + (
        "/count" if expected.count else ""
    )
    assert share.post_url == (
        f"{expected.scheme}://{host}{port}{expected.prefix}/shares/v2/async/{expected.share_id}{tail}"
    )
    assert parse_share_url(share.post_url) == replace(share, apikey=None, extra_params=())
    keyless = replace(share, apikey=None)
    assert repr(share) == repr(keyless)
    assert str(share) == str(keyless)
    assert share.display() == share.post_url
    assert "?" not in share.post_url


@given(st.text(max_size=30), st.text(UNRESERVED + "+/=", min_size=4, max_size=30))
def test_redact_hides_keys_in_urls(prefix: str, key: str) -> None:
    out = redact(f"{prefix} https://hub/shares/abc?apikey={key}&limit=1", key)
    assert key not in out
