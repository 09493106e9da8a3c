"""Metrics: the exposition parsed by prometheus_client's own parser, served over a real socket."""

from __future__ import annotations

import http.client
import math
import os
import socket
import sys
import threading
import time
from typing import Dict, List, Tuple

import pytest
from processes import Child, wait_until
from prometheus_client.parser import text_string_to_metric_families

from hubasync.errors import NetworkError, UsageError
from hubasync.files.reading import UnreadableFile
from hubasync.service.metrics import (
    CONTENT_TYPE,
    ERROR_KINDS,
    MAX_CONNECTIONS,
    MAX_REQUEST_BYTES,
    REQUEST_DEADLINE,
    MetricsServer,
    Registry,
    ServiceMetrics,
    error_kind,
)
from hubasync.version import __version__

SLOWLORIS = os.path.join(os.path.dirname(__file__), "slowloris.py")


def scrape(address: Tuple[str, int], path: str = "/metrics") -> Tuple[int, str, str]:
    connection = http.client.HTTPConnection(address[0], address[1], timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        connection.close()


def samples(text: str) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels, via prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_service_metrics_served_and_parsed() -> None:
    metrics = ServiceMetrics()
    metrics.add_share("quiet")
    metrics.add_share("cust42")
    metrics.page("cust42", 1000)
    metrics.page("cust42", 250)
    metrics.failure("cust42", "HubBusy")
    metrics.failure("cust42", "HubBusy")
    metrics.failure("cust42", "AuthError")
    metrics.success("cust42", 1_700_000_000.5)
    metrics.behind.set(12.25, share="quiet")
    with MetricsServer(metrics, "127.0.0.1:0") as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        status, content_type, body = scrape(server.address)
    assert status == 200 and content_type == CONTENT_TYPE
    found = samples(body)
    assert found == {
        ("hubasync_events_total", (("share", "cust42"),)): 1250.0,
        ("hubasync_events_total", (("share", "quiet"),)): 0.0,
        ("hubasync_pages_total", (("share", "cust42"),)): 2.0,
        ("hubasync_pages_total", (("share", "quiet"),)): 0.0,
        ("hubasync_errors_total", (("kind", "AuthError"), ("share", "cust42"))): 1.0,
        ("hubasync_errors_total", (("kind", "HubBusy"), ("share", "cust42"))): 2.0,
        ("hubasync_last_success_timestamp_seconds", (("share", "cust42"),)): 1_700_000_000.5,
        ("hubasync_up", (("share", "cust42"),)): 1.0,
        ("hubasync_up", (("share", "quiet"),)): 0.0,
        ("hubasync_behind_seconds", (("share", "cust42"),)): 0.0,
        ("hubasync_behind_seconds", (("share", "quiet"),)): 12.25,
        ("hubasync_build_info", (("version", __version__),)): 1.0,
    }
    types = {family.name: family.type for family in text_string_to_metric_families(body)}
    assert types == {"hubasync_events": "counter", "hubasync_pages": "counter",
                     "hubasync_errors": "counter",
                     "hubasync_last_success_timestamp_seconds": "gauge",
                     "hubasync_up": "gauge", "hubasync_behind_seconds": "gauge",
                     "hubasync_build_info": "gauge", "hubasync_delivered": "counter",
                     "hubasync_acknowledged": "counter", "hubasync_delivery_retries": "counter",
                     "hubasync_dead_letters": "counter", "hubasync_delivery_lag_events": "gauge",
                     "hubasync_last_acknowledgement_timestamp_seconds": "gauge"}
    assert "# HELP hubasync_events_total " in body
    assert "# TYPE hubasync_events_total counter" in body
    assert f'hubasync_build_info{{version="{__version__}"}} 1\n' in body


def test_up_goes_back_to_0_after_a_failure() -> None:
    metrics = ServiceMetrics()
    metrics.add_share("s")
    metrics.success("s", 1_700_000_000.0)
    assert samples(metrics.render())[("hubasync_up", (("share", "s"),))] == 1
    metrics.failure("s", "NetworkError")  # was 1: a failure must bring it down
    assert samples(metrics.render())[("hubasync_up", (("share", "s"),))] == 0
    assert metrics.up.value(share="s") == 0
    metrics.success("s", 1_700_000_001.0)
    assert metrics.up.value(share="s") == 1


def test_label_values_and_help_are_escaped() -> None:
    registry = Registry()
    gauge = registry.gauge("odd", 'help with \\ and\nnewline "quoted"', ("what",))
    tricky = 'back\\slash "quote"\nnewline, comma} brace'
    gauge.set(float("inf"), what=tricky)
    gauge.set(-0.5, what="plain")
    gauge.set(float("nan"), what="nan")
    text = registry.exposition()
    assert text.endswith("\n") and text.count("\n") == 5
    # the exact spellings of the format (Python's float() would read "inf" and "nan" too)
    assert text.splitlines()[2:] == [
        'odd{what="back\\\\slash \\"quote\\"\\nnewline, comma} brace"} +Inf',
        'odd{what="nan"} NaN',
        'odd{what="plain"} -0.5',
    ]
    families = list(text_string_to_metric_families(text))
    assert len(families) == 1
    assert families[0].documentation == 'help with \\ and\nnewline "quoted"'
    values = {sample.labels["what"]: sample.value for sample in families[0].samples}
    assert values[tricky] == float("inf") and values["plain"] == -0.5
    assert math.isnan(values["nan"])


def test_counters_are_exact_under_concurrent_increments() -> None:
    """Many threads, many increments of one series, switching threads as often as Python can:
    an increment made without the lock loses some of them."""
    metrics = ServiceMetrics()
    threads_count, increments = 16, 20000

    def work(share: str) -> None:
        for _ in range(increments):
            metrics.page(share, 3)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(f"s{i % 2}",))
                   for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    found = samples(metrics.render())
    per_share = threads_count // 2 * increments
    assert found[("hubasync_pages_total", (("share", "s0"),))] == per_share
    assert found[("hubasync_events_total", (("share", "s1"),))] == 3 * per_share


def test_error_kinds_are_a_fixed_set() -> None:
    metrics = ServiceMetrics()
    metrics.failure("s", "AuthError")
    metrics.failure("s", "KeyError")
    metrics.failure("s", "\x1b[31m anything a hub may say")
    found = samples(metrics.render())
    assert found[("hubasync_errors_total", (("kind", "AuthError"), ("share", "s")))] == 1
    assert found[("hubasync_errors_total", (("kind", "internal"), ("share", "s")))] == 2
    kinds = {dict(labels)["kind"] for (name, labels) in found if name == "hubasync_errors_total"}
    assert kinds == {"AuthError", "internal"}
    assert error_kind(UnreadableFile("the file", "/x", "why")) == "OutputError"
    assert error_kind(NetworkError("x")) == "NetworkError"
    assert error_kind(KeyError("x")) == "internal"
    assert {"AuthError", "HubBusy", "OutputError", "UsageError", "internal"} <= ERROR_KINDS


def test_misuse_is_refused() -> None:
    registry = Registry()
    counter = registry.counter("x_total", "x", ("share",))
    with pytest.raises(ValueError, match="_total"):
        registry.counter("x", "x")
    with pytest.raises(ValueError, match="exists already"):
        registry.gauge("x_total", "x")
    with pytest.raises(ValueError, match="takes the labels share"):
        counter.inc(kind="k")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, share="a")


def test_other_paths_are_404_and_head_has_no_body() -> None:
    with MetricsServer(Registry(), "127.0.0.1:0") as server:
        status, _, body = scrape(server.address, "/")
        assert status == 404 and "/metrics" in body
        assert scrape(server.address, "/metrics/x")[0] == 404
        assert scrape(server.address, "/metrics?name[]=x")[0] == 200
        connection = http.client.HTTPConnection(*server.address, timeout=30)
        connection.request("HEAD", "/metrics")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b""
        connection.close()


def test_stop_closes_the_port() -> None:
    server = MetricsServer(Registry(), "127.0.0.1:0").start()
    address = server.address
    assert scrape(address)[0] == 200
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=30).close()


def test_a_port_in_use_or_a_bad_address_is_one_usage_line() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        with pytest.raises(UsageError, match=f"^metrics: cannot listen on 127.0.0.1:{port}: "):
            MetricsServer(Registry(), f"127.0.0.1:{port}")
    finally:
        holder.close()
    with pytest.raises(UsageError, match="HOST:PORT"):
        MetricsServer(Registry(), "9464")


def test_ipv6_loopback_when_the_machine_has_it() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = MetricsServer(Registry(), "[::1]:0")
    except UsageError as error:
        pytest.skip(f"no IPv6 loopback here: {error}")
    with server:
        assert server.address[0] == "::1"
        assert scrape(server.address)[0] == 200


# -- the endpoint under hostile clients ---------------------------------------------------------


def raw_exchange(address: Tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` as is and read the whole answer (the server closes the connection)."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_answers_are_http_1_0_and_close_the_connection() -> None:
    with MetricsServer(ServiceMetrics(), "127.0.0.1:0") as server:
        ok = raw_exchange(server.address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = ok.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.0 200 OK"
        assert f"Content-Type: {CONTENT_TYPE}" in lines and "Connection: close" in lines
        assert f"Content-Length: {len(body)}" in lines
        assert b"hubasync_build_info" in body
        bare = raw_exchange(server.address, b"GET /metrics HTTP/1.0\n\n")  # bare newlines
        assert bare.startswith(b"HTTP/1.0 200 OK\r\n")
        head_only = raw_exchange(server.address, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert head_only.startswith(b"HTTP/1.0 200 OK\r\n") and head_only.endswith(b"\r\n\r\n")
        for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS"):
            answer = raw_exchange(server.address, method + b" /metrics HTTP/1.1\r\n\r\n")
            assert answer.startswith(b"HTTP/1.0 405 Method Not Allowed\r\n")
            assert b"\r\nAllow: GET, HEAD\r\n" in answer
        for garbage in (b"\r\n\r\n", b"GET\r\n\r\n", b"GET /metrics\r\n\r\n",
                        b"GET /metrics FTP/1.0\r\n\r\n", b"\x16\x03\x01 x y\r\n\r\n"):
            assert raw_exchange(server.address, garbage).startswith(b"HTTP/1.0 400 ")
        too_long = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_BYTES + b"\r\n\r\n"
        assert raw_exchange(server.address, too_long).startswith(b"HTTP/1.0 431 ")
        endless = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (MAX_REQUEST_BYTES + 10)
        assert raw_exchange(server.address, endless).startswith(b"HTTP/1.0 431 ")
        at_the_bound = b"GET /metrics HTTP/1.1\r\nX: "
        at_the_bound += b"a" * (MAX_REQUEST_BYTES - len(at_the_bound) - 4) + b"\r\n\r\n"
        assert len(at_the_bound) == MAX_REQUEST_BYTES
        assert raw_exchange(server.address, at_the_bound).startswith(b"HTTP/1.0 200 OK\r\n")


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (non-blocking): EOF, or a reset."""
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def scrape_works(address: Tuple[str, int]) -> bool:
    try:
        return scrape(address)[0] == 200
    except OSError:  # accepted and closed at once, past the cap
        return False


def test_connections_past_the_cap_are_closed_at_once() -> None:
    with MetricsServer(Registry(), "127.0.0.1:0", max_connections=4, deadline=600) as server:
        holders = [socket.create_connection(server.address, timeout=30) for _ in range(4)]
        try:
            extra = socket.create_connection(server.address, timeout=30)
            extra.setblocking(False)
            wait_until(lambda: closed_by_server(extra), "the connection past the cap closed")
            extra.close()
            for holder in holders:
                holder.setblocking(False)
                assert not closed_by_server(holder)  # the first four are kept (till 600 s)
            holders.pop().close()  # a place frees: a scrape gets it
            wait_until(lambda: scrape_works(server.address), "a scrape in the freed place")
        finally:
            for holder in holders:
                holder.close()


def test_a_trickling_request_is_closed_by_its_deadline_not_kept_by_each_byte() -> None:
    with MetricsServer(Registry(), "127.0.0.1:0", deadline=1.0) as server:
        trickler = socket.create_connection(server.address, timeout=30)
        silent = socket.create_connection(server.address, timeout=30)
        trickler.setblocking(False)
        silent.setblocking(False)
        request = b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * 100_000
        sent = [0]

        def trickle() -> bool:  # a byte each time it is asked, far faster than the deadline
            if closed_by_server(trickler):
                return True
            try:
                trickler.send(request[sent[0]:sent[0] + 1])
                sent[0] += 1
            except OSError:
                return True
            time.sleep(0.05)
            return False

        try:
            wait_until(trickle, "the trickling connection closed")
            wait_until(lambda: closed_by_server(silent), "the silent connection closed")
            assert sent[0] >= 1
            assert scrape_works(server.address)
        finally:
            trickler.close()
            silent.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def attack_report(child: Child) -> Dict[str, int]:
    lines = child.stdout_bytes().decode().splitlines()
    if not lines:
        return {}
    return {key: int(value) for key, value in
            (field.split("=") for field in lines[-1].split())}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
def test_300_slowloris_connections_leave_scrapes_answered_and_resources_bounded() -> None:
    """The defaults: a 300-connection slowloris (a byte each 0.2 s, in a child process) holds at
    most MAX_CONNECTIONS descriptors of this process and no thread, until each deadline."""
    metrics = ServiceMetrics()
    metrics.add_share("s")
    fds_before, threads_before = open_fds(), threading.active_count()
    fds_seen: List[int] = []
    threads_seen: List[int] = []
    with MetricsServer(metrics, "127.0.0.1:0") as server:
        host, port = server.address
        with Child([sys.executable, SLOWLORIS, host, str(port), "300", "0.2"]) as attacker:
            fds_base = open_fds()  # the server's own (port, wake-up pair, poll), the child's

            def report() -> Dict[str, int]:
                fds_seen.append(open_fds())
                threads_seen.append(threading.active_count())
                return attack_report(attacker)

            wait_until(lambda: report().get("opened") == 300, "300 connections opened",
                       child=attacker)
            wait_until(lambda: report() and scrape_works(server.address),
                       "a scrape answered under the attack", child=attacker)
            wait_until(lambda: report().get("open") == 0,
                       f"every slow connection closed by its deadline ({REQUEST_DEADLINE:g} s)",
                       child=attacker)
            assert scrape_works(server.address)
    # the connections held, and the scraper's own socket
    assert max(fds_seen) <= fds_base + MAX_CONNECTIONS + 1, (fds_base, max(fds_seen))
    assert max(threads_seen) <= threads_before + 1
    assert open_fds() <= fds_before and threading.active_count() == threads_before


def test_stop_ends_the_thread_and_closes_every_connection() -> None:
    threads_before = threading.active_count()
    server = MetricsServer(Registry(), "127.0.0.1:0", deadline=600).start()
    holder = socket.create_connection(server.address, timeout=30)
    holder.setblocking(False)
    wait_until(lambda: threading.active_count() == threads_before + 1, "the server's thread")
    server.stop()
    assert threading.active_count() == threads_before
    wait_until(lambda: closed_by_server(holder), "the held connection closed by stop()")
    holder.close()
