"""Network failures over real sockets: one line naming where (host:port, and the proxy), at once
for what asking again cannot change (no such host name, a TLS mismatch, an untrusted
certificate), after the retries for the rest. Attempts are counted on the ``--debug`` trace
(one ``> POST`` line per attempt), never by the clock."""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator, List, NamedTuple

import pytest
import trustme
from processes import refused_port

from .helpers import Run, run

KEY = "demo-key"
PATH = "/shares/v2/async/demo"


class Certs(NamedTuple):
    ca: str
    cert: str
    key: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    issued = ca.issue_cert("127.0.0.1", "localhost")
    issued.private_key_and_cert_chain_pem.write_to_path(str(folder / "hub.pem"))
    issued.private_key_pem.write_to_path(str(folder / "hub.key"))
    return Certs(str(folder / "ca.pem"), str(folder / "hub.pem"), str(folder / "hub.key"))


def failed_once_and_said(args: List[str], *words: str, attempts: int = 1) -> str:
    """Run twice (plain, then ``--debug``): exit 6 with one line holding ``words``, after
    ``attempts`` attempts. Returns the line."""
    done = run(args, apikey=KEY)
    assert done.code == 6, done.stderr
    lines = [line for line in done.stderr.splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert attempts_of(run([*args, "--debug"], apikey=KEY)) == attempts
    return lines[0]


def attempts_of(done: Run) -> int:
    assert done.code == 6, done.stderr
    return sum(1 for line in done.stderr.splitlines() if line.startswith("hubasync: > POST "))


def does_not_resolve(name: str) -> bool:
    try:
        socket.getaddrinfo(name, 443)
    except socket.gaierror as error:
        return error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
    return False


def test_a_host_name_that_does_not_resolve_is_said_at_once() -> None:
    if not does_not_resolve("host.invalid"):  # RFC 6761: it never resolves
        pytest.skip("this machine's resolver cannot tell that host.invalid does not exist")
    line = failed_once_and_said(["https://host.invalid/shares/v2/async/abc", "--retries=6"],
                                "cannot connect to host.invalid:443", "does not resolve")
    assert "failed attempts" not in line


def test_a_proxy_whose_name_does_not_resolve_is_said_at_once(sim: Any) -> None:
    if not does_not_resolve("proxy.invalid"):
        pytest.skip("this machine's resolver cannot tell that proxy.invalid does not exist")
    failed_once_and_said([f"{sim.url}{PATH}", "--proxy", "http://proxy.invalid:3128"],
                         "cannot connect to proxy proxy.invalid:3128", "does not resolve",
                         f"127.0.0.1:{sim.port}")
    assert sim.stats.requests["post"] == 0


def test_https_to_a_port_that_speaks_plain_http_is_said_at_once(sim: Any) -> None:
    failed_once_and_said([f"https://127.0.0.1:{sim.port}{PATH}", "--retries=6"],
                         f"cannot connect to 127.0.0.1:{sim.port}", "does not speak TLS",
                         "http://")
    assert sim.stats.requests["post"] == 0


def test_plain_http_to_a_port_that_speaks_tls_is_said_at_once(make_sim: Any,
                                                              certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    failed_once_and_said([f"http://127.0.0.1:{sim.port}{PATH}", "--retries=6"],
                         f"127.0.0.1:{sim.port}", "speaks TLS", "https://")
    assert sim.stats.requests["post"] == 0


@pytest.fixture
def old_tls_server() -> Iterator[int]:
    """A port that answers every TLS hello with the alert "protocol version", as a server
    speaking only an older TLS does; it counts the connections."""
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])  # fatal, protocol_version
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.recv(65536)
                    conn.sendall(alert)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield int(server.getsockname()[1])
        stop.set()
        socket.create_connection(server.getsockname(), timeout=5).close()  # wake accept()
        thread.join(10)


def test_no_tls_version_in_common_is_said_at_once(old_tls_server: int) -> None:
    failed_once_and_said([f"https://127.0.0.1:{old_tls_server}{PATH}", "--retries=6"],
                         f"cannot connect to 127.0.0.1:{old_tls_server}",
                         "no TLS version in common")


def test_plain_http_answered_in_tls_is_said_at_once(old_tls_server: int) -> None:
    # a TLS server that answers a plain request with an alert, as some do, rather than closing
    failed_once_and_said([f"http://127.0.0.1:{old_tls_server}{PATH}", "--retries=6"],
                         f"127.0.0.1:{old_tls_server}", "speaks TLS", "https://")


def test_an_untrusted_certificate_is_said_at_once(make_sim: Any, certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    failed_once_and_said([f"https://127.0.0.1:{sim.port}{PATH}", "--retries=6"],
                         f"cannot connect to 127.0.0.1:{sim.port}", "certificate", "--cacert")


def test_https_through_a_tls_port_works_with_its_ca(make_sim: Any, certs: Certs) -> None:
    sim = make_sim(tls_cert=certs.cert, tls_key=certs.key)
    done = run([f"https://127.0.0.1:{sim.port}{PATH}", "--cacert", certs.ca, "--limit=3"],
               apikey=KEY)
    assert done.code == 0, done.stderr
    assert len(done.events) == 3


def test_a_refused_connection_names_the_host_and_is_retried() -> None:
    with refused_port() as port:
        line = failed_once_and_said([f"http://127.0.0.1:{port}{PATH}", "--retries=2"],
                                    f"cannot connect to 127.0.0.1:{port}: connection refused",
                                    "gave up after 3 failed attempts", attempts=3)
    assert line.count(f"127.0.0.1:{port}") == 1  # the reasons are counted, not repeated


def test_a_dropped_answer_is_still_retried(make_sim: Any) -> None:
    # a plain server that closes unanswered is not taken for a TLS one: the run goes on
    sim = make_sim(faults=["post-drop:2"])
    done = run([f"{sim.url}{PATH}", "--limit=5", "--debug"], apikey=KEY)
    assert done.code == 0, done.stderr
    assert sum(1 for line in done.stderr.splitlines()
               if f"POST to 127.0.0.1:{sim.port} failed" in line) == 2
