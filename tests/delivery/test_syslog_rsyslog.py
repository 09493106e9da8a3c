"""Syslog over TCP and TLS to a real rsyslog: framing, keys, the clean close that stands for an
acknowledgement, and TLS refusals in one line."""

from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

import pytest
from receivers.rsyslog import Rsyslog, missing, sd_key

from hubasync.errors import DeliveryError

from .helpers import deadline, destination, events

pytestmark = pytest.mark.skipif(missing(["tcp", "tls"]) is not None,
                                reason=missing(["tcp", "tls"]) or "")


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, certs: Any) -> Iterator[Rsyslog]:
    with Rsyslog(tmp_path_factory.mktemp("rsyslog"), ["tcp", "tls", "tls-mutual"],
                 certs=certs) as receiver:
        yield receiver


def received_since(rsyslog: Rsyslog, before: int, count: int) -> Any:
    return rsyslog.wait_for(before + count)[before:before + count]


def test_events_arrive_framed_with_their_keys(rsyslog: Rsyslog) -> None:
    before = rsyslog.count()
    batch = events(500)
    outcome = destination(rsyslog.url("tcp"), share="demo share").deliver(batch, deadline())
    assert outcome.acknowledged == 500 and outcome.rejected == []
    got = received_since(rsyslog, before, 500)
    assert [m["msg"] for m in got] == [item.event.decode() for item in batch]
    assert [sd_key(m["sd"]) for m in got] == [item.key for item in batch]
    assert {m["msgid"] for m in got} == {"demo_share"}
    assert all(m["sd"].startswith("[hubasync@32473 key=") for m in got)
    assert all(m["raw"].startswith("<14>1 ") and " hubasync " in m["raw"] for m in got)


def test_tls_with_a_trusted_certificate(rsyslog: Rsyslog, certs: Any) -> None:
    before = rsyslog.count()
    batch = events(300, seed=2)
    outcome = destination(rsyslog.url("tls"), {"cacert": certs.ca}).deliver(batch, deadline())
    assert outcome.acknowledged == 300
    got = received_since(rsyslog, before, 300)
    assert [sd_key(m["sd"]) for m in got] == [item.key for item in batch]


def test_mutual_tls_needs_the_client_certificate(rsyslog: Rsyslog, certs: Any) -> None:
    url = rsyslog.url("tls-mutual")
    for _ in range(3):  # rsyslog's alert, or its reset when that comes first: either says so
        with pytest.raises(DeliveryError) as caught:
            destination(url, {"cacert": certs.ca}).deliver(events(500), deadline())
        assert caught.value.outcome.acknowledged == 0
        assert "client certificate" in str(caught.value) and str(caught.value).startswith(url)
    before = rsyslog.count()
    options = {"cacert": certs.ca, "cert": certs.client_cert, "key": certs.client_key}
    outcome = destination(url, options).deliver(events(5), deadline())
    assert outcome.acknowledged == 5 and len(received_since(rsyslog, before, 5)) == 5


def test_a_wrong_ca_is_refused_in_one_line(rsyslog: Rsyslog, certs: Any) -> None:
    with pytest.raises(DeliveryError) as caught:
        destination(rsyslog.url("tls"), {"cacert": certs.other_ca}).deliver(events(3),
                                                                            deadline())
    text = str(caught.value)
    assert not caught.value.transient and "not trusted" in text and "\n" not in text


def test_a_wrong_name_is_refused(tmp_path: Any, certs: Any) -> None:
    with Rsyslog(tmp_path, ["tls"], certs=certs, wrong_name=True) as receiver, \
            pytest.raises(DeliveryError) as caught:
        destination(receiver.url("tls"), {"cacert": certs.ca}).deliver(events(3), deadline())
    assert not caught.value.transient and "not valid for its name" in str(caught.value)


def test_a_receiver_that_is_down_is_transient(rsyslog: Rsyslog) -> None:
    from processes import refused_port

    with refused_port() as port:
        url = f"syslog+tcp://127.0.0.1:{port}"
        with pytest.raises(DeliveryError) as caught:
            destination(url).deliver(events(3), deadline())
    assert caught.value.transient and "connection refused" in str(caught.value)
    assert caught.value.outcome.acknowledged == 0


def test_without_a_clean_close_nothing_counts_as_delivered() -> None:
    """A receiver that reads everything but never closes its side: not acknowledged."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        held = []

        def accept() -> None:
            connection, _ = server.accept()
            held.append(connection)
            while connection.recv(65536):
                pass  # read to our end of stream, then keep the connection open

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        url = f"syslog+tcp://127.0.0.1:{port}?timeout=0.5"
        with pytest.raises(DeliveryError) as caught:
            destination(url).deliver(events(10), deadline())
        thread.join(10)
        for connection in held:
            connection.close()
    assert caught.value.transient and caught.value.outcome.acknowledged == 0
    assert "did not close the connection cleanly" in str(caught.value)


def test_events_over_max_message_size_are_rejected_not_sent(rsyslog: Rsyslog) -> None:
    before = rsyslog.count()
    batch = events(4)
    batch[2] = events(1, start=2, size=2000)[0]
    outcome = destination(rsyslog.url("tcp"), {"max_message_size": 1000}).deliver(batch,
                                                                                  deadline())
    assert outcome.acknowledged == 4
    assert [r.position for r in outcome.rejected] == [2] and "1000" in outcome.rejected[0].reason
    got = received_since(rsyslog, before, 3)
    assert [sd_key(m["sd"]) for m in got] == [batch[i].key for i in (0, 1, 3)]
