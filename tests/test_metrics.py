"""Metrics: the exposition parsed by prometheus_client's own parser, served over a real socket."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hubasync.errors import UsageError
from hubasync.service.metrics import CONTENT_TYPE, MetricsServer, Registry, ServiceMetrics


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
    }
    types = {family.name: family.type for family in text_string_to_metric_families(body)}
    assert types == {"hubasync_events": "counter", "hubasync_pages": "counter",
                     "hubasync_errors": "counter",
                     "hubasync_last_success_timestamp_seconds": "gauge",
                     "hubasync_up": "gauge", "hubasync_behind_seconds": "gauge"}
    assert "# HELP hubasync_events_total " in body
    assert "# TYPE hubasync_events_total counter" in body
    metrics.failure("quiet", "NetworkError")
    assert metrics.up.value(share="quiet") == 0


def test_label_values_and_help_are_escaped() -> None:
    registry = Registry()
    gauge = registry.gauge("odd", 'help with \\ and\nnewline "quoted"', ("what",))
    tricky = 'back\\slash "quote"\nnewline, comma} brace'
    gauge.set(float("inf"), what=tricky)
    gauge.set(-0.5, what="plain")
    gauge.set(float("nan"), what="nan")
    text = registry.exposition()
    assert text.endswith("\n") and text.count("\n") == 5
    families = list(text_string_to_metric_families(text))
    assert len(families) == 1
    assert families[0].documentation == 'help with \\ and\nnewline "quoted"'
    values = {sample.labels["what"]: sample.value for sample in families[0].samples}
    assert values[tricky] == float("inf") and values["plain"] == -0.5
    assert values["nan"] != values["nan"]


def test_counters_are_exact_under_concurrent_increments() -> None:
    metrics = ServiceMetrics()

    def work(share: str) -> None:
        for _ in range(2000):
            metrics.page(share, 3)

    threads = [threading.Thread(target=work, args=(f"s{i % 2}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = samples(metrics.render())
    assert found[("hubasync_pages_total", (("share", "s0"),))] == 8000
    assert found[("hubasync_events_total", (("share", "s1"),))] == 24000


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
