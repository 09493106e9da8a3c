"""The API key rules of the README's Security section, with real processes and real servers.

- the key goes only to the share's own origin: a Location elsewhere is refused, not followed;
- the key is never printed (not with --debug, not on any failure), and travels only in the
  ``Authorization`` header, never in a URL;
- plain http to another machine is refused before any connection (--allow-http lifts it);
- TLS certificates are verified; --cacert adds a private CA.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fakehub import SHARE, TINY_EVENTS, FakeHub, Seen, reply, tiny_share
from processes import refused_port

from .helpers import Run, one_line, run, share

KEY = "Sup3r-S3cret-K3y-9931"
WRONG = "Wr0ng-K3y-5517"
MARK = "foreign-job-4f1c"  # the job id of every foreign Location: who asks for it followed one


def assert_no_key(done: Run, *keys: str) -> None:
    for key in keys or (KEY,):
        assert key not in done.stderr, done.stderr
        assert key.encode() not in done.stdout


def ours(server: FakeHub, key: str = KEY) -> List[Seen]:
    """The requests that came from our runs: they name our key or our marked job somewhere.

    Other test suites may run on this machine at the same time, and a client of theirs that
    retries a port they freed may reach one of our servers; such strangers are ignored.
    """
    return [seen for seen in server.requests if key in repr(seen) or MARK in seen.target]


def assert_key_only_in_header(hub: FakeHub, key: str = KEY) -> None:
    assert ours(hub, key), "the hub was never asked"
    for seen in ours(hub, key):
        assert seen.headers.get("authorization") == f"token {key}"
        assert key not in seen.target and "apikey" not in seen.target.lower()
        others = {name: value for name, value in seen.headers.items()
                  if name != "authorization"}
        assert key not in json.dumps(others)


@pytest.fixture
def recorder(request: Any) -> Iterator[FakeHub]:
    """A server that must never be contacted: it records every connection and request.

    On 127.0.0.1 unless the test's ``kind`` is "other address" (this machine's non-loopback
    address, where no other test suite's client can stray: there, not even a connection).
    """
    host = "127.0.0.1"
    if getattr(request, "param", None) == "other address":
        address = outward_address()
        if address is None:
            pytest.skip("this machine has no non-loopback IPv4 address")
        host = address
    with FakeHub(routes={}, host=host) as other:
        yield other


def assert_untouched(recorder: FakeHub) -> None:
    assert ours(recorder) == []
    if recorder.host != "127.0.0.1":
        assert recorder.connections == 0


# --- the key goes only to the share's origin -------------------------------------------------


def foreign(recorder: FakeHub, hub_port: int, kind: str, what: str) -> str:
    path = f"{SHARE}/{what}/{MARK}"
    return {
        "other port": f"http://127.0.0.1:{recorder.port}{path}",
        "other address": f"http://{recorder.host}:{recorder.port}{path}",
        "scheme-relative": f"//127.0.0.1:{recorder.port}{path}",
        "other scheme": f"https://127.0.0.1:{hub_port}{path}",
        "other host name": f"http://localhost:{hub_port}{path}",
    }[kind]


KINDS = ["other port", "other address", "scheme-relative", "other scheme", "other host name"]


def hub_with(routes: Dict[Tuple[str, str], Any]) -> FakeHub:
    hub = FakeHub(routes=tiny_share(KEY))
    hub.routes.update(routes)
    return hub


@pytest.mark.parametrize("recorder, kind", [(kind, kind) for kind in KINDS],
                         indirect=["recorder"])
def test_post_pointing_the_job_to_another_origin_is_not_followed(recorder: FakeHub,
                                                                 kind: str) -> None:
    hub = hub_with({})
    with hub:
        hub.routes[("POST", SHARE)] = reply(202, Location=foreign(recorder, hub.port, kind,
                                                                  "jobs"))
        done = run([hub.url + SHARE, "--debug", "--retries=1"], apikey=KEY)
    assert done.code == 6, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("hubasync: ")
             and not line.startswith(("hubasync: >", "hubasync: <"))]
    assert len(lines) == 1 and "another origin" in lines[0], done.stderr
    assert_untouched(recorder)
    assert [(seen.method, seen.path) for seen in ours(hub)] == [("POST", SHARE)]
    assert_no_key(done)


@pytest.mark.parametrize("recorder, kind", [(kind, kind) for kind in KINDS],
                         indirect=["recorder"])
def test_status_pointing_the_results_to_another_origin_is_not_followed(recorder: FakeHub,
                                                                       kind: str) -> None:
    hub = hub_with({})
    with hub:
        hub.routes[("GET", f"{SHARE}/jobs/1")] = reply(
            302, Location=foreign(recorder, hub.port, kind, "results"))
        done = run([hub.url + SHARE, "--retries=1"], apikey=KEY)
    assert done.code == 6, done.stderr
    assert "another origin" in one_line(done.stderr)
    assert_untouched(recorder)
    assert [(seen.method, seen.path) for seen in ours(hub)] == [
        ("POST", SHARE), ("GET", f"{SHARE}/jobs/1")]
    assert done.stdout in (b"", b"[]\n")
    assert_no_key(done)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_query_is_not_followed(recorder: FakeHub, status: int) -> None:
    target = f"http://127.0.0.1:{recorder.port}{SHARE}/{MARK}"
    with hub_with({("POST", SHARE): reply(status, Location=target)}) as hub:
        done = run([hub.url + SHARE, "--retries=1"], apikey=KEY)
    assert done.code == 6, done.stderr
    assert f"127.0.0.1:{recorder.port}" in one_line(done.stderr)  # it says where it was sent
    assert_untouched(recorder)
    assert [(seen.method, seen.path) for seen in ours(hub)] == [("POST", SHARE)]
    assert_no_key(done)


def test_a_status_poll_pointing_elsewhere_is_not_followed(recorder: FakeHub) -> None:
    # a 202 "not done yet" whose Location moves the polling to another origin
    with hub_with({}) as hub:
        hub.routes[("GET", f"{SHARE}/jobs/1")] = reply(
            202, Location=f"http://127.0.0.1:{recorder.port}{SHARE}/jobs/{MARK}", Retry_After="0")
        done = run([hub.url + SHARE, "--retries=1"], apikey=KEY)
    assert done.code == 6, done.stderr
    assert "another origin" in one_line(done.stderr)
    assert_untouched(recorder)


# --- the key is never shown, and travels only in the Authorization header --------------------


@pytest.mark.parametrize("given", ["environment", "--apikey", "--apikey-file", "sync URL",
                                   "async URL"])
def test_the_key_travels_only_in_the_authorization_header(given: str, tmp_path: Any) -> None:
    with FakeHub(routes=tiny_share(KEY)) as hub:
        url, args, env_key = hub.url + SHARE, [], None
        if given == "environment":
            env_key = KEY
        elif given == "--apikey":
            args = [f"--apikey={KEY}"]
        elif given == "--apikey-file":
            path = tmp_path / "key"
            path.write_text(KEY + "\n")
            args = [f"--apikey-file={path}"]
        elif given == "sync URL":
            url = f"{hub.url}/shares/v2/demo?apikey={KEY}"
        else:
            url = f"{hub.url}{SHARE}?apikey={KEY}"
        done = run([url, "--debug", *args], apikey=env_key)
    assert done.code == 0, done.stderr
    assert done.events == TINY_EVENTS
    assert "> POST" in done.stderr and "< 200" in done.stderr  # the trace is there
    assert_no_key(done)
    assert_key_only_in_header(hub)
    assert [(seen.method, seen.target) for seen in ours(hub)] == [
        ("POST", SHARE), ("GET", f"{SHARE}/jobs/1"), ("GET", f"{SHARE}/results/1")]


def test_an_escaped_key_in_the_url_is_unescaped_and_never_shown() -> None:
    key = "a+b/c=d%2Fe"
    escaped = "a%2Bb%2Fc%3Dd%252Fe"
    with FakeHub(routes=tiny_share(key)) as hub:
        done = run([f"{hub.url}/shares/v2/demo?apikey={escaped}", "--debug"], apikey=None)
    assert done.code == 0, done.stderr
    assert_key_only_in_header(hub, key)
    assert_no_key(done, key, escaped)


@pytest.mark.parametrize("form", ["async", "sync URL"])
def test_debug_run_against_the_simulator_never_shows_the_key(make_sim: Any, form: str) -> None:
    sim = make_sim(apikey=KEY, events=300, page_max=100)
    for tail in ("", "/count"):
        if form == "async":
            done = run([share(sim, "demo", tail), "--debug"], apikey=KEY)
        else:
            done = run([f"{sim.url}/shares/v2/demo{tail}?apikey={KEY}", "--debug"], apikey=None)
        assert done.code == 0, done.stderr
        assert "> POST" in done.stderr
        assert_no_key(done)
    assert len(json.loads(run([share(sim)], apikey=KEY).stdout)) == 300


def failing_runs(sim: Any, tmp_path: Any, dead_port: int,
                 ) -> List[Tuple[str, List[str], Optional[str], int]]:
    dead = f"http://127.0.0.1:{dead_port}"
    sync = f"{sim.url}/shares/v2/demo?apikey={KEY}"
    return [
        ("wrong key", [share(sim)], WRONG, 3),
        ("wrong key in the URL", [f"{sim.url}/shares/v2/demo?apikey={WRONG}"], None, 3),
        ("unknown share", [share(sim, "nosuchshare")], KEY, 4),
        ("unknown share, key in the URL", [f"{sim.url}/shares/v2/nosuch?apikey={KEY}"], None, 4),
        ("rejected query", [sync, "--start=foo", "--param=startt=1"], None, 5),
        ("invalid token", [sync, "--token=not-a-token"], None, 5),
        ("dead hub", [f"{dead}/shares/v2/demo?apikey={KEY}", "--retries=1"], None, 6),
        ("dead hub, key in env", [f"{dead}{SHARE}", "--retries=0"], KEY, 6),
        ("unwritable output", [sync, f"-o={tmp_path}/missing/dir/out.json"], None, 7),
        ("usage error", [sync, "--limit=0"], None, 2),
        ("remote http", [f"http://hub.invalid/shares/v2/demo?apikey={KEY}"], None, 2),
        ("job URL", [f"{sim.url}{SHARE}/jobs/1?apikey={KEY}"], None, 2),
        ("key on the command line", [share(sim, "nosuchshare"), f"-k={KEY}"], None, 4),
    ]


def test_no_failing_exit_path_shows_the_key(make_sim: Any, tmp_path: Any) -> None:
    sim = make_sim(apikey=KEY, events=100)
    with refused_port() as dead_port:
        cases = [(name, args + debug, apikey, code)
                 for name, args, apikey, code in failing_runs(sim, tmp_path, dead_port)
                 for debug in ([], ["--debug"])]
        with ThreadPoolExecutor(max_workers=8) as pool:  # independent processes: all at once
            runs = list(pool.map(lambda case: run(case[1], apikey=case[2]), cases))
    for (name, args, _, code), done in zip(cases, runs):
        assert done.code == code, (name, args, done.stderr)
        assert_no_key(done, KEY, WRONG)
        if "--debug" not in args:
            one_line(done.stderr)
        else:
            # --debug was on: a request trace, or (before any request) the traceback
            assert "hubasync: > POST" in done.stderr or "Traceback" in done.stderr, done.stderr


def test_full_disk_does_not_show_the_key(make_sim: Any) -> None:
    sim = make_sim(apikey=KEY, events=100)
    environment = {k: v for k, v in os.environ.items() if k != "APIKEY"}
    from .helpers import command

    with open("/dev/full", "wb") as full:
        done = subprocess.run(command() + [f"{sim.url}/shares/v2/demo?apikey={KEY}", "--debug"],
                              stdout=full, stderr=subprocess.PIPE, env=environment, timeout=60)
    assert done.returncode == 7
    assert KEY not in done.stderr.decode("utf-8", "replace")


def test_a_hubs_error_message_cannot_forge_the_token_line() -> None:
    body = json.dumps({"title": "400 Invalid input(s)", "errors": [
        {"key": "start", "message": "Invalid start\nFORGED-TOKEN"}]}).encode()
    with hub_with({("POST", SHARE): reply(400, body)}) as hub:
        done = run([hub.url + SHARE], apikey=KEY)
    assert done.code == 5
    assert done.last_stderr_line != "FORGED-TOKEN"
    one_line(done.stderr)


@pytest.mark.parametrize("answer, code", [
    (reply(503, Retry_After="\u00b2"), 6),
    (reply(400, b"[" * 100_000), 5),
])
def test_a_hostile_answer_ends_in_a_documented_exit_code(answer: Any, code: int) -> None:
    with hub_with({("POST", SHARE): answer}) as hub:
        done = run([hub.url + SHARE, "--retries=0"], apikey=KEY)
    assert done.code == code, done.stderr


# --- plain http only to this machine ---------------------------------------------------------


def test_http_to_a_remote_host_is_refused_before_any_connection() -> None:
    started = time.monotonic()
    done = run(["http://hub.invalid/shares/v2/async/demo", "--retries=0"], apikey=KEY)
    assert done.code == 2, done.stderr
    line = one_line(done.stderr)
    assert "http" in line and "hub.invalid" in line
    assert "resolve" not in line  # no lookup was even tried
    assert time.monotonic() - started < 10


def test_allow_http_lifts_the_refusal() -> None:
    done = run(["http://hub.invalid/shares/v2/async/demo", "--allow-http", "--retries=0"],
               apikey=KEY)
    assert done.code == 6, done.stderr  # it went on, and could not resolve hub.invalid
    assert "resolve" in one_line(done.stderr)
    assert_no_key(done)


def outward_address() -> Optional[str]:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_http_to_a_non_loopback_address_of_this_machine() -> None:
    address = outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with FakeHub(routes=tiny_share(KEY), host=address) as hub:
        refused = run([hub.url + SHARE], apikey=KEY)
        assert refused.code == 2, refused.stderr
        assert hub.connections == 0  # refused before connecting
        allowed = run([hub.url + SHARE, "--allow-http"], apikey=KEY)
    assert allowed.code == 0, allowed.stderr
    assert allowed.events == TINY_EVENTS
    assert hub.connections > 0


# --- TLS -------------------------------------------------------------------------------------


def openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: str, name: str) -> None:
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=hubasync test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Dict[str, str]:
    """A private CA, a server certificate it signed for IP 127.0.0.1, and an unrelated CA."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = str(tmp_path_factory.mktemp("pki"))
    make_ca(folder, "ca")
    make_ca(folder, "otherca")
    with open(os.path.join(folder, "server.ext"), "w") as ext:
        ext.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                  "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                  "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            cwd=folder)
    return {name: os.path.join(folder, name)
            for name in ("ca.pem", "otherca.pem", "server.pem", "server.key")}


@pytest.fixture
def tls_hub(pki: Dict[str, str]) -> Iterator[FakeHub]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki["server.pem"], pki["server.key"])
    with FakeHub(routes=tiny_share(KEY), ssl_context=context) as hub:
        yield hub


def test_tls_with_the_private_ca_succeeds(tls_hub: FakeHub, pki: Dict[str, str]) -> None:
    assert tls_hub.url.startswith("https://127.0.0.1:")
    done = run([tls_hub.url + SHARE, f"--cacert={pki['ca.pem']}", "--debug"], apikey=KEY)
    assert done.code == 0, done.stderr
    assert done.events == TINY_EVENTS
    assert_key_only_in_header(tls_hub)
    assert_no_key(done)


@pytest.mark.parametrize("trust", ["system only", "another CA"])
def test_tls_with_an_untrusted_certificate_fails(tls_hub: FakeHub, pki: Dict[str, str],
                                                 trust: str) -> None:
    args = [tls_hub.url + SHARE, "--retries=1"]
    if trust == "another CA":
        args.append(f"--cacert={pki['otherca.pem']}")
    done = run(args, apikey=KEY)
    assert done.code == 6, done.stderr
    assert "certificate" in one_line(done.stderr).lower()
    assert ours(tls_hub) == []  # not a byte of HTTP, so not the key, was sent
    assert_no_key(done)


def test_tls_checks_the_host_name(tls_hub: FakeHub, pki: Dict[str, str]) -> None:
    # the certificate names IP 127.0.0.1 only: "localhost" is the same server, another name
    done = run([f"https://localhost:{tls_hub.port}{SHARE}", f"--cacert={pki['ca.pem']}",
                "--retries=0"], apikey=KEY)
    assert done.code == 6, done.stderr
    assert "certificate" in one_line(done.stderr).lower()
    assert ours(tls_hub) == []
