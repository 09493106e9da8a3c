"""Behind a proxy: the command line and the library through a real HTTP proxy (proxy.py, from
PyPI, in the dev extra), to the simulator over http and over TLS.

The proxy runs as its own process on a port it picks (it writes it to a file); a proxy that
cannot be started fails the test with its own words, it is never skipped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import pytest
import trustme
from fakehub import FakeHub, tiny_share

from hubasync import Client
from hubasync.errors import ProxyAuthError

from .helpers import Run, one_line, run

KEY = "demo-key"
USER = "proxy-user"
PASSWORD = "Pr0xy-P@ss-7731"  # its escaped form: Pr0xy-P%40ss-7731
ESCAPED = "Pr0xy-P%40ss-7731"
STARTUP_DEADLINE = 60.0


@dataclass
class RealProxy:
    """A proxy.py process listening on 127.0.0.1:port, logging each connection to ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, user: Optional[str] = None, password: Optional[str] = None) -> str:
        credentials = f"{user}:{password}@" if user is not None else ""
        return f"http://{credentials}{self.address}"

    def log_lines(self, word: str) -> List[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if word in line]

    def wait_for_log(self, word: str, count: int = 1) -> List[str]:
        """The log's lines holding ``word``, once there are ``count`` (it is written after
        each connection closes)."""
        deadline = time.monotonic() + 30
        while True:
            lines = self.log_lines(word)
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


def _start_proxy(folder: Path, basic_auth: Optional[str]) -> RealProxy:
    folder.mkdir(parents=True, exist_ok=True)
    port_file, log, errors = folder / "port", folder / "proxy.log", folder / "stderr"
    command = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
               "--port-file", str(port_file), "--num-acceptors", "1", "--num-workers", "1",
               "--log-level", "INFO", "--log-file", str(log)]
    if basic_auth:
        command += ["--basic-auth", basic_auth]
    with open(errors, "wb") as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=err,
                                   start_new_session=True)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while True:
        if process.poll() is not None:
            pytest.fail(f"the proxy (proxy.py, from the dev extra: make test installs it) "
                        f"exited with {process.returncode}: "
                        f"{errors.read_text(errors='replace')[-2000:]}")
        try:
            port = int(port_file.read_text().strip())
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return RealProxy(process, port, log)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            _stop_proxy(process)
            pytest.fail(f"the proxy did not accept connections within {STARTUP_DEADLINE:g} s: "
                        f"{errors.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def _stop_proxy(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture
def make_proxy(tmp_path: Path) -> Iterator[Callable[..., RealProxy]]:
    """``make_proxy()`` or ``make_proxy(basic_auth="user:password")``: a running proxy."""
    started: List[RealProxy] = []

    def factory(basic_auth: Optional[str] = None) -> RealProxy:
        proxy = _start_proxy(tmp_path / f"proxy{len(started)}", basic_auth)
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        _stop_proxy(proxy.process)


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening, for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@dataclass
class Certs:
    ca: str  # the CA to trust (--cacert)
    cert: str  # chain for "localhost"
    key: str
    wrong_cert: str  # chain for another name
    wrong_key: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    paths = []
    for name in ("localhost", "other-hub.invalid"):
        issued = ca.issue_cert(name)
        issued.private_key_and_cert_chain_pem.write_to_path(str(folder / f"{name}.pem"))
        issued.private_key_pem.write_to_path(str(folder / f"{name}.key"))
        paths += [str(folder / f"{name}.pem"), str(folder / f"{name}.key")]
    return Certs(str(folder / "ca.pem"), *paths)


def tls_share(sim: Any) -> str:
    """The share's URL by the name its certificate holds (the proxy resolves it)."""
    return f"https://localhost:{sim.port}/shares/v2/async/demo"


def plain_share(sim: Any) -> str:
    return f"{sim.url}/shares/v2/async/demo"


def same_events(got: List[Any], expected: List[Any]) -> bool:
    """The same events, in whatever order (the default sort is by time)."""
    return len(got) == len(expected) and sorted(map(json.dumps, got)) == sorted(
        map(json.dumps, expected))


def connections(done: Run) -> List[str]:
    return [line for line in done.stderr.splitlines() if "(new connection, " in line]


# -- through the proxy ---------------------------------------------------------------------------


def test_http_goes_through_the_proxy_in_absolute_form(make_sim: Any,
                                                      make_proxy: Callable[..., RealProxy],
                                                      ) -> None:
    sim, proxy = make_sim(), make_proxy()
    done = run([plain_share(sim), "--debug"], env={"http_proxy": proxy.url()})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert connections(done) and all(f"through proxy {proxy.address} (http_proxy)" in line
                                     for line in connections(done))
    # proxy.py logs the first request of each connection with the authority it found in the
    # request target: there only in the absolute form.
    seen = proxy.wait_for_log(f"POST 127.0.0.1:{sim.port}/shares/v2/async/demo",
                              len(connections(done)))
    assert len(seen) == len(connections(done)), proxy.log.read_text()


def test_https_goes_through_a_connect_tunnel_to_the_hub_over_tls(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy()
    done = run([tls_share(sim), "--cacert", certs.ca, "--debug"],
               env={"https_proxy": proxy.url()})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert sim.stats.snapshot()["requests"]["results"] == 3
    # Three pages: keep-alive, plus the early next query on a second connection.
    assert 2 <= len(connections(done)) < 9, done.stderr
    assert all(f"through proxy {proxy.address} (https_proxy)" in line
               for line in connections(done))
    tunnels = proxy.wait_for_log(f"CONNECT localhost:{sim.port}", len(connections(done)))
    assert len(tunnels) == len(connections(done)), proxy.log.read_text()


def test_kept_alive_tunnels_dropped_by_the_hub_are_reopened_through_the_proxy(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key, faults=["keepalive-drop:4"])
    proxy = make_proxy()
    done = run([tls_share(sim), "--cacert", certs.ca, "--retries", "0", "--debug"],
               env={"https_proxy": proxy.url()})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert sim.stats.snapshot()["faults"].get("keepalive-drop") == 4
    assert len(connections(done)) >= 4


def test_the_hubs_certificate_is_checked_against_the_hubs_name_inside_the_tunnel(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.wrong_cert, tls_key=certs.wrong_key)
    proxy = make_proxy()
    done = run([tls_share(sim), "--cacert", certs.ca, "--retries", "3"],
               env={"https_proxy": proxy.url()})
    assert done.code == 6
    line = one_line(done.stderr)
    assert "TLS certificate not trusted" in line and "localhost" in line, line
    assert proxy.wait_for_log(f"CONNECT localhost:{sim.port}"), "never went through the proxy"
    assert sim.stats.snapshot()["requests"].get("post", 0) == 0


def test_without_cacert_the_private_ca_is_not_trusted_through_the_tunnel(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy()
    done = run([tls_share(sim)], env={"https_proxy": proxy.url()})
    assert done.code == 6
    assert "TLS certificate not trusted" in one_line(done.stderr)


def test_no_proxy_goes_direct(make_sim: Any, refusing_port: int) -> None:
    sim = make_sim()
    done = run([plain_share(sim), "--debug", "--retries", "0"],
               env={"http_proxy": f"http://127.0.0.1:{refusing_port}",
                    "no_proxy": "example.com,127.0.0.1"})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert connections(done) and all("direct (no_proxy matches 127.0.0.1)" in line
                                     for line in connections(done))


def test_credentials_are_accepted_and_never_shown(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy(basic_auth=f"{USER}:{PASSWORD}")
    done = run([tls_share(sim), "--cacert", certs.ca, "--debug", "--proxy",
                proxy.url(USER, ESCAPED)])
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert f"through proxy {USER}:REDACTED@{proxy.address}" in done.stderr
    for secret in (PASSWORD, ESCAPED):
        assert secret not in done.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_wrong_credentials_end_in_one_line_and_exit_2_without_retrying(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs, debug: bool) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy(basic_auth=f"{USER}:{PASSWORD}")
    wrong = "Wr0ng-Pr0xy-Pass"
    done = run([tls_share(sim), "--cacert", certs.ca, "--retries", "5",
                *(["--debug"] if debug else [])],
               env={"HTTPS_PROXY": proxy.url(USER, wrong)})
    assert done.code == 2, done.stderr
    assert wrong not in done.stderr
    last = done.last_stderr_line
    assert last == (f"hubasync: the proxy {USER}:REDACTED@{proxy.address} refused the "
                    "credentials (407 Proxy Authentication Required)")
    if not debug:
        assert one_line(done.stderr) == last
    assert len(proxy.wait_for_log("ProxyAuthenticationFailed")) == 1
    assert sim.stats.snapshot()["requests"].get("post", 0) == 0


def test_a_proxy_that_wants_credentials_says_so(
        make_sim: Any, make_proxy: Callable[..., RealProxy]) -> None:
    sim = make_sim()
    proxy = make_proxy(basic_auth=f"{USER}:{PASSWORD}")
    done = run([plain_share(sim), "--proxy", proxy.url()])
    assert done.code == 2
    assert "wants credentials" in one_line(done.stderr) and proxy.address in one_line(done.stderr)


def test_a_dead_proxy_is_retried_then_exit_6_naming_it(make_sim: Any,
                                                       refusing_port: int) -> None:
    sim = make_sim()
    started = time.monotonic()
    done = run([plain_share(sim), "--retries", "1", "--timeout", "2", "--debug",
                "--proxy", f"http://{USER}:{PASSWORD}@127.0.0.1:{refusing_port}"])
    assert done.code == 6, done.stderr
    assert time.monotonic() - started < 60
    assert (f"proxy {USER}:REDACTED@127.0.0.1:{refusing_port}: connection refused"
            in done.last_stderr_line)
    assert "gave up after 2 failed attempts" in done.last_stderr_line
    assert PASSWORD not in done.stderr
    assert sim.stats.snapshot()["requests"].get("post", 0) == 0


def test_a_proxy_that_never_answers_connect_times_out(make_sim: Any, certs: Certs,
                                                      silent_port: int) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    started = time.monotonic()
    done = run([tls_share(sim), "--cacert", certs.ca, "--retries", "1", "--timeout", "1",
                "--proxy", f"127.0.0.1:{silent_port}"])
    assert done.code == 6
    assert f"proxy 127.0.0.1:{silent_port}: timed out" in one_line(done.stderr)
    assert time.monotonic() - started < 60


def test_the_proxy_option_overrides_the_environment(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs,
        refusing_port: int) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy()
    done = run([tls_share(sim), "--cacert", certs.ca, "--debug", "--retries", "0",
                "--proxy", proxy.url()],
               env={"https_proxy": f"http://127.0.0.1:{refusing_port}", "no_proxy": "*"})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert all(f"through proxy {proxy.address} (set explicitly)" in line
               for line in connections(done))
    assert proxy.wait_for_log(f"CONNECT localhost:{sim.port}")


def test_no_proxy_option_ignores_the_environment(make_sim: Any, refusing_port: int) -> None:
    sim = make_sim()
    done = run([plain_share(sim), "--no-proxy", "--debug", "--retries", "0"],
               env={"http_proxy": f"http://127.0.0.1:{refusing_port}"})
    assert done.code == 0, done.stderr
    assert same_events(done.events, sim.share_events())
    assert all("direct (proxy disabled)" in line for line in connections(done))


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--proxy", "https://u:S3cr3t@proxy:3128"], {}, "--proxy"),
    ([], {"https_proxy": "socks5://u:S3cr3t@proxy:1080"}, "https_proxy"),
    (["--proxy", "http://p:1", "--no-proxy"], {}, "--no-proxy"),
])
def test_a_proxy_that_cannot_be_used_is_refused_up_front(args: List[str], env: dict[str, str],
                                                         named: str) -> None:
    done = run(["https://hub.example/shares/v2/async/demo", *args], env=env)
    assert done.code == 2
    line = one_line(done.stderr)
    assert named in line and "S3cr3t" not in line


def test_the_api_key_never_goes_to_the_proxy_and_its_credentials_never_reach_the_hub(
        make_proxy: Callable[..., RealProxy], certs: Certs, tmp_path: Path) -> None:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    proxy = make_proxy(basic_auth=f"{USER}:{PASSWORD}")
    with FakeHub(routes=tiny_share(KEY), ssl_context=context) as hub:
        done = run([f"https://localhost:{hub.port}/shares/v2/async/demo", "--cacert", certs.ca,
                    "--proxy", proxy.url(USER, ESCAPED)], apikey=KEY)
        assert done.code == 0, done.stderr
        assert len(done.events) == 3
        assert hub.requests
        for seen in hub.requests:
            assert seen.headers["authorization"] == f"token {KEY}"
            assert "proxy-authorization" not in seen.headers
    assert KEY not in proxy.log.read_text()


# -- a hostile proxy ----------------------------------------------------------------------------


class ScriptedProxy:
    """A listener on 127.0.0.1 that reads each request head and answers ``answer``, then
    closes; ``heads`` holds what it was sent."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.heads: List[bytes] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(10)
                head = b""
                try:
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        data = conn.recv(4096)
                        if not data:
                            break
                        head += data
                    self.heads.append(head)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()


@pytest.fixture
def scripted_proxy() -> Iterator[Callable[[bytes], ScriptedProxy]]:
    started: List[ScriptedProxy] = []

    def factory(answer: bytes) -> ScriptedProxy:
        started.append(ScriptedProxy(answer))
        return started[-1]

    yield factory
    for proxy in started:
        proxy.close()


def test_a_proxy_echoing_the_credentials_cannot_make_them_shown(
        make_sim: Any, certs: Certs, scripted_proxy: Callable[[bytes], ScriptedProxy]) -> None:
    import base64

    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    proxy = scripted_proxy(f"HTTP/1.1 407 unknown {USER}:{PASSWORD} ({basic})\r\n"
                           f"Content-Length: 0\r\n\r\n".encode())
    done = run([tls_share(sim), "--cacert", certs.ca, "--debug",
                "--proxy", f"http://{USER}:{ESCAPED}@127.0.0.1:{proxy.port}"])
    assert done.code == 2, done.stderr
    assert "407 unknown" in done.last_stderr_line
    for secret in (PASSWORD, ESCAPED, basic):
        assert secret not in done.stderr
    assert len(proxy.heads) == 1
    head = proxy.heads[0].decode()
    assert head.startswith(f"CONNECT localhost:{sim.port} HTTP/1.1\r\n")
    assert f"Host: localhost:{sim.port}\r\n" in head
    assert f"Proxy-Authorization: Basic {basic}\r\n" in head
    assert KEY not in head


@pytest.mark.parametrize(("answer", "reason"), [
    (b"HTTP/1.1 200 OK\r\n" + b"X-Flood: 1\r\n" * 5000, "more than 100 headers"),
    (b"HTTP/1.1 200 " + b"A" * 200_000, "answer line longer than 8192 bytes"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed answer to CONNECT"),
    (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
     "refused the tunnel to localhost:"),
], ids=["header flood", "endless line", "not http", "502"])
def test_a_hostile_answer_to_connect_is_bounded_and_retried(
        make_sim: Any, certs: Certs, scripted_proxy: Callable[[bytes], ScriptedProxy],
        answer: bytes, reason: str) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = scripted_proxy(answer)
    done = run([tls_share(sim), "--cacert", certs.ca, "--retries", "1", "--timeout", "5",
                "--proxy", f"127.0.0.1:{proxy.port}"])
    assert done.code == 6, done.stderr
    line = one_line(done.stderr)
    assert f"proxy 127.0.0.1:{proxy.port}" in line and reason in line, line
    assert len(proxy.heads) == 2  # retried once


# -- the library ---------------------------------------------------------------------------------


def test_the_library_goes_through_the_proxy_it_is_given(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs,
        monkeypatch: pytest.MonkeyPatch, refusing_port: int) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy(basic_auth=f"{USER}:{PASSWORD}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{refusing_port}")
    client = Client(tls_share(sim), apikey=KEY, cacert=certs.ca, retries=0,
                    proxy=proxy.url(USER, ESCAPED))
    assert same_events(list(client.events()), sim.share_events())
    assert client.count() == len(sim.share_events())
    assert proxy.wait_for_log(f"CONNECT localhost:{sim.port}")
    wrong = Client(tls_share(sim), apikey=KEY, cacert=certs.ca, proxy=proxy.url(USER, "nope"))
    with pytest.raises(ProxyAuthError):
        list(wrong.events())


def test_the_library_reads_the_environment_by_default(
        make_sim: Any, make_proxy: Callable[..., RealProxy], certs: Certs,
        monkeypatch: pytest.MonkeyPatch, refusing_port: int) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    proxy = make_proxy()
    monkeypatch.setenv("https_proxy", proxy.url())
    assert same_events(list(Client(tls_share(sim), apikey=KEY, cacert=certs.ca).events()),
                       sim.share_events())
    assert proxy.wait_for_log(f"CONNECT localhost:{sim.port}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{refusing_port}")
    client = Client(tls_share(sim), apikey=KEY, cacert=certs.ca, retries=0, proxy="")
    assert client.count() == len(sim.share_events())


def test_the_sync_service_goes_through_its_configured_proxy(
        make_sim: Any, make_proxy: Callable[..., RealProxy], tmp_path: Path) -> None:
    sim = make_sim(shares=2, events=300, page_max=100)
    proxy = make_proxy(basic_auth="svc:s3cr3t-pw")
    config = tmp_path / "hubasync.toml"
    config.write_text(
        f'directory = "{tmp_path}"\napikey_env = "APIKEY"\n'
        f'proxy = "{proxy.url("svc", "s3cr3t-pw")}"\n'
        + "".join(f'[shares.s{n}]\nurl = "{sim.url}/shares/v2/async/s{n}"\n' for n in (1, 2)))
    done = run(["sync", str(config), "--once", "--debug"])
    assert done.code == 0, done.stderr
    assert "s3cr3t-pw" not in done.stderr
    for n in (1, 2):
        with open(tmp_path / f"s{n}.jsonl", encoding="utf-8") as handle:
            assert same_events([json.loads(line) for line in handle],
                               sim.share_events(f"s{n}"))
        assert proxy.wait_for_log(f"POST 127.0.0.1:{sim.port}/shares/v2/async/s{n}")
