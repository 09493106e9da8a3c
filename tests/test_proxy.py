"""The proxy decisions of hubasync.proxy, and the transport's side of them against a recorder.

The environment is read as urllib reads it; the recorder (a FakeHub standing where the proxy
would) shows what a proxy receives for plain http: absolute-form targets, the hub's Host, and
Proxy-Authorization on every request.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Tuple
from urllib.parse import quote

import pytest
from fakehub import FakeHub, reply, tiny_share
from hypothesis import assume, given
from hypothesis import strategies as st

from hubasync import Client
from hubasync.core.redaction import redact
from hubasync.errors import ProxyAuthError, UsageError
from hubasync.transport.proxy import Proxy, parse_proxy_url, route_for, secrets_of


@pytest.mark.parametrize(("text", "expected"), [
    ("http://proxy.corp:3128", Proxy("proxy.corp", 3128)),
    ("http://proxy.corp:3128/", Proxy("proxy.corp", 3128)),
    ("proxy.corp:3128", Proxy("proxy.corp", 3128)),
    ("HTTP://Proxy.Corp", Proxy("proxy.corp", 80)),
    ("http://[::1]:8080", Proxy("::1", 8080)),
    ("http://al%40ice:p%3Ass@proxy:3128", Proxy("proxy", 3128, "al@ice", "p:ss")),
    ("http://bob@proxy:3128", Proxy("proxy", 3128, "bob", None)),
    ("http://bob:@proxy:3128", Proxy("proxy", 3128, "bob", "")),
    ("http://bob:p@ss@proxy:3128", Proxy("proxy", 3128, "bob", "p@ss")),
])
def test_proxy_urls_are_parsed(text: str, expected: Proxy) -> None:
    parsed = parse_proxy_url(text)
    assert parsed == expected
    assert (parsed.username, parsed.password) == (expected.username, expected.password)


@pytest.mark.parametrize("text", [
    "https://proxy:3128", "socks5://user:s3cr3t@proxy:1080", "http://", "http://proxy:port",
    "http://proxy:70000", "http://proxy:3128/path", "http://[zz]:1",
    "http://u:s3cr3t@s3cr3t@proxy:port",
])
def test_bad_proxy_urls_are_refused_without_showing_the_password(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_proxy_url(text)
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.exit_code == 2


PASSWORDS = ["p/ss", "p#ss", "p?ss", "p@ss", "a/b?c#d@e", "@", "/", "#", "?", "p@ss@", ":", "p ss"]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("escaped", [False, True])
def test_a_password_with_url_delimiters_is_parsed_whole(password: str, escaped: bool) -> None:
    written = quote(password, safe="") if escaped else password
    for url in (f"http://u%2Fser:{written}@proxy.corp:3128", f"u%2Fser:{written}@proxy.corp:3128/"):
        proxy = parse_proxy_url(url)
        assert proxy == Proxy("proxy.corp", 3128, "u/ser", password)
        assert (proxy.username, proxy.password) == ("u/ser", password)
        assert proxy.authorization == "Basic " + base64.b64encode(
            f"u/ser:{password}".encode()).decode()
        assert {password, f"u/ser:{password}", written, f"u%2Fser:{written}"} <= set(
            secrets_of(url))


@pytest.mark.parametrize("password", ["Z/s3cr3t", "Z#s3cr3t", "Z?s3cr3t", "Z@s3cr3t"])
@pytest.mark.parametrize("tail", ["@proxy:port", "@proxy:99999", "@proxy:3128/path", "@[zz]:1",
                                  "@:3128", "@proxy:3128?x"])
def test_a_refused_url_never_shows_a_password_with_url_delimiters(password: str,
                                                                 tail: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_proxy_url(f"http://user:{password}{tail}")
    assert "s3cr3t" not in str(caught.value) and "user" not in str(caught.value)
    assert "REDACTED@" in str(caught.value)


@pytest.mark.parametrize("port", ["0", "65536", "99999", "00000", "123456", "99999999999999"])
def test_a_port_out_of_range_is_refused_naming_it(port: str) -> None:
    with pytest.raises(UsageError, match=f"the port {port} is not a number from 1 to 65535") \
            as caught:
        parse_proxy_url(f"http://proxy:{port}")
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("port", ["-1", "\u00b3", "1e3", "0x50", " 80"])
def test_a_port_that_is_no_number_is_refused(port: str) -> None:
    with pytest.raises(UsageError, match="is not a number from 1 to 65535"):
        parse_proxy_url(f"http://proxy:{port}")


def test_the_ports_at_the_edges_are_taken() -> None:
    assert parse_proxy_url("http://proxy:1").port == 1
    assert parse_proxy_url("http://proxy:65535").port == 65535
    assert parse_proxy_url("http://proxy:").port == 80


printable = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=16)


@given(printable, printable, st.booleans())
def test_any_credentials_round_trip_and_their_echoes_are_redacted(user: str, password: str,
                                                                 escaped: bool) -> None:
    assume(":" not in user or escaped)
    written_user = quote(user, safe="") if escaped or "@" in user else user
    written = quote(password, safe="") if escaped else password
    url = f"http://{written_user}:{written}@proxy.corp:3128"
    proxy = parse_proxy_url(url)
    assert (proxy.username, proxy.password) == (user, password)
    secrets = secrets_of(url)
    assert proxy.authorization is not None
    echo = f"407 from proxy: {proxy.authorization} ({user}:{password}) {url}"
    shown = redact(echo, *secrets)
    credential = proxy.authorization.partition(" ")[2]
    assert credential not in shown
    if password:
        assert f"{user}:{password}" not in shown
        assert f"{written_user}:{written}" not in shown


def test_credentials_become_basic_authorization_and_are_never_shown() -> None:
    proxy = parse_proxy_url("http://al%40ice:p%3Ass@proxy:3128")
    assert proxy.authorization == "Basic " + base64.b64encode(b"al@ice:p:ss").decode()
    assert "p:ss" not in str(proxy) and "p:ss" not in repr(proxy)
    assert str(proxy) == "al%40ice:REDACTED@proxy:3128"
    assert set(proxy.secrets) == {"p:ss", "al@ice:p:ss", base64.b64encode(b"al@ice:p:ss").decode()}
    assert parse_proxy_url("proxy:1").authorization is None
    assert parse_proxy_url("proxy:1").secrets == ()


def _env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_no_setting_and_no_environment_goes_direct() -> None:
    route = route_for(None, "https", "hub.example", 443)
    assert route.proxy is None
    assert route.describe() == "direct (no proxy configured)"


def test_the_environment_proxy_of_the_hubs_scheme_is_used(monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    _env(monkeypatch, https_proxy="http://tls-proxy:3128", http_proxy="http://plain-proxy:8080")
    assert route_for(None, "https", "hub.example", 443).proxy == Proxy("tls-proxy", 3128)
    assert route_for(None, "http", "hub.example", 80).proxy == Proxy("plain-proxy", 8080)
    assert "https_proxy" in route_for(None, "https", "hub.example", 443).describe()


def test_lower_case_wins_over_upper_case(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, HTTPS_PROXY="http://upper:1", https_proxy="http://lower:2")
    assert route_for(None, "https", "hub", 443).proxy == Proxy("lower", 2)


def test_upper_case_alone_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, HTTPS_PROXY="http://upper:1")
    assert route_for(None, "https", "hub", 443).proxy == Proxy("upper", 1)


def test_http_proxy_upper_case_is_ignored_under_cgi(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, HTTP_PROXY="http://from-a-client-header:1", REQUEST_METHOD="GET")
    assert route_for(None, "http", "hub", 80).proxy is None
    _env(monkeypatch, http_proxy="http://lower:2")
    assert route_for(None, "http", "hub", 80).proxy == Proxy("lower", 2)


@pytest.mark.parametrize(("no_proxy", "host", "port", "bypassed"), [
    ("hub.example", "hub.example", 443, True),
    ("example", "hub.example", 443, True),
    (".example", "hub.example", 443, True),
    ("other.example, hub.example", "hub.example", 443, True),
    ("HUB.EXAMPLE", "hub.example", 443, True),
    ("hub.example:443", "hub.example", 443, True),
    ("hub.example:8443", "hub.example", 443, False),
    ("*", "anything", 443, True),
    ("ub.example", "hub.example", 443, False),
    ("other", "hub.example", 443, False),
    ("127.0.0.1", "127.0.0.1", 8080, True),
])
def test_no_proxy_as_urllib_reads_it(monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str,
                                     port: int, bypassed: bool) -> None:
    _env(monkeypatch, https_proxy="http://proxy:3128", no_proxy=no_proxy)
    route = route_for(None, "https", host, port)
    assert (route.proxy is None) is bypassed
    if bypassed:
        assert route.describe() == f"direct (no_proxy matches {host})"


def test_a_setting_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, https_proxy="http://env:1", no_proxy="*")
    assert route_for("http://given:2", "https", "hub", 443).proxy == Proxy("given", 2)
    disabled = route_for("", "https", "hub", 443)
    assert disabled.proxy is None and disabled.describe() == "direct (proxy disabled)"


def test_a_bad_environment_proxy_is_a_usage_error_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, https_proxy="socks5://user:s3cr3t@proxy:1080")
    with pytest.raises(UsageError, match="https_proxy in the environment") as caught:
        route_for(None, "https", "hub", 443)
    assert "s3cr3t" not in str(caught.value)
    assert "s3cr3t" in secrets_of(None)


def test_secrets_of_a_setting_and_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    basic = base64.b64encode(b"u:pw1").decode()
    assert set(secrets_of("http://u:pw1@p:1")) == {"pw1", "u:pw1", basic}
    assert secrets_of("") == ()
    _env(monkeypatch, https_proxy="http://u:pw2@p:1", http_proxy="http://p:2", no_proxy="x")
    assert "pw2" in secrets_of(None)
    assert secrets_of("http://p:3") == ()


def test_redact_removes_every_secret_given() -> None:
    text = "key K3Y-1 password p%40ss (p@ss) credential QmFzaWM="
    shown = redact(text, "K3Y-1", None, "p@ss", "QmFzaWM=")
    assert shown == ("key REDACTED password REDACTED (REDACTED) credential REDACTED")


# -- plain http through a proxy, as the proxy sees it ------------------------------------------

HUB = "http://hub.example:8080"


def _as_proxy() -> FakeHub:
    """A recorder that answers absolute-form requests for HUB's tiny share, as a hub would."""
    routes: Dict[Tuple[str, str], Any] = {
        (method, HUB + path): answer for (method, path), answer in tiny_share("key").items()
    }
    return FakeHub(routes=routes)


def test_plain_http_goes_to_the_proxy_in_absolute_form_with_credentials() -> None:
    with _as_proxy() as proxy:
        client = Client(HUB + "/shares/v2/async/demo", apikey="key", allow_http=True,
                        proxy=f"http://u:pw@127.0.0.1:{proxy.port}", retries=0)
        events = list(client.events())
    assert len(events) == 3
    basic = "Basic " + base64.b64encode(b"u:pw").decode()
    assert [seen.target.split("?")[0] for seen in proxy.requests] == [
        HUB + "/shares/v2/async/demo", HUB + "/shares/v2/async/demo/jobs/1",
        HUB + "/shares/v2/async/demo/results/1"]
    for seen in proxy.requests:
        assert seen.headers["host"] == "hub.example:8080"
        assert seen.headers["proxy-authorization"] == basic
        assert seen.headers["authorization"] == "token key"


def test_plain_http_407_is_a_proxy_auth_error_not_retried() -> None:
    routes = {("POST", HUB + "/shares/v2/async/demo"): reply(407, Proxy_Authenticate="Basic")}
    with FakeHub(routes=routes) as proxy:
        client = Client(HUB + "/shares/v2/async/demo", apikey="key", allow_http=True,
                        proxy=f"http://u:s3cr3t@127.0.0.1:{proxy.port}", retries=3)
        with pytest.raises(ProxyAuthError) as caught:
            list(client.events())
    assert len(proxy.requests) == 1
    assert caught.value.exit_code == 2
    assert f"127.0.0.1:{proxy.port}" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_no_proxy_setting_goes_direct_even_with_a_proxy_in_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHub() as hub:
        monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard port: nothing there
        client = Client(hub.url + "/shares/v2/async/demo", apikey="key", proxy="", retries=0)
        assert len(list(client.events())) == 3
        assert all(seen.target.startswith("/") for seen in hub.requests)


def test_the_library_refuses_a_bad_proxy_up_front() -> None:
    with pytest.raises(UsageError, match="only http"):
        Client("https://hub.example/shares/v2/async/demo", apikey="key",
               proxy="https://proxy:3128")
