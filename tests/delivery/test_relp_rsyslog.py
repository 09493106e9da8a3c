"""RELP to a real rsyslog (imrelp): every event acknowledged by its ``rsp 200``, windows,
a receiver killed mid-window (the acknowledged prefix is truthful, the rest sent again), a
receiver gone between batches, TLS with client certificates, refusals in one line."""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from typing import Any, Dict, Iterator, List, Set

import pytest
from processes import wait_until
from receivers.rsyslog import Rsyslog, missing, sd_key

from hubasync.delivery.records import Outcome
from hubasync.errors import DeliveryError

from .helpers import deadline, destination, events

pytestmark = pytest.mark.skipif(missing(["relp", "relp-tls"]) is not None,
                                reason=missing(["relp", "relp-tls"]) or "")


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory, certs: Any) -> Iterator[Rsyslog]:
    with Rsyslog(tmp_path_factory.mktemp("rsyslog"), ["relp", "relp-tls"],
                 certs=certs) as receiver:
        yield receiver


def client_tls(certs: Any, **more: Any) -> Dict[str, Any]:
    return dict({"cacert": certs.ca, "cert": certs.client_cert, "key": certs.client_key}, **more)


def keys_of(messages: List[Dict[str, str]]) -> List[str]:
    return [sd_key(m["sd"]) for m in messages]


def test_events_arrive_in_order_over_several_windows(rsyslog: Rsyslog) -> None:
    before = rsyslog.count()
    batch = events(5000)
    target = destination(rsyslog.url("relp"), {"window": 256}, share="demo")
    try:
        outcome = target.deliver(batch, deadline())
        assert outcome.acknowledged == 5000 and outcome.rejected == []
        more = events(100, start=5000)
        assert target.deliver(more, deadline()).acknowledged == 100  # the same session
    finally:
        target.close()
    got = rsyslog.wait_for(before + 5100)[before:before + 5100]
    assert keys_of(got) == [item.key for item in batch + more]
    assert [m["msg"] for m in got[:5000]] == [item.event.decode() for item in batch]
    assert {m["msgid"] for m in got} == {"demo"}


def test_a_window_of_one_still_delivers(rsyslog: Rsyslog) -> None:
    before = rsyslog.count()
    target = destination(rsyslog.url("relp"), {"window": 1})
    assert target.deliver(events(50), deadline()).acknowledged == 50
    target.close()
    assert len(rsyslog.wait_for(before + 50)) >= before + 50


def test_a_receiver_gone_between_batches_is_reconnected(tmp_path: Any) -> None:
    with Rsyslog(tmp_path, ["relp"]) as receiver:
        target = destination(receiver.url("relp"), {"timeout": 5})
        assert target.deliver(events(10), deadline()).acknowledged == 10
        receiver.stop()  # rsyslog sends serverclose and closes the session
        with pytest.raises(DeliveryError) as caught:
            target.deliver(events(10, start=10), deadline())
        assert caught.value.transient and caught.value.outcome.acknowledged == 0
        assert "\n" not in str(caught.value) and str(caught.value).startswith("relp://")
        receiver.start()
        assert target.deliver(events(10, start=10), deadline()).acknowledged == 10
        target.close()
        assert keys_of(receiver.wait_for(20))[-10:] == [e.key for e in events(10, start=10)]


def test_killed_mid_window_the_prefix_is_truthful_and_a_resend_completes(tmp_path: Any) -> None:
    """kill -9 while the window is full: every event of the acknowledged prefix survives (a
    disk queue: durable), the rest is sent again after the restart, and every event arrives at
    least once, duplicates carrying the same key."""
    batch = events(1200, size=350)  # the synced disk queue is slow: ~60-900 events/s here
    with Rsyslog(tmp_path, ["relp"], queue="disk") as receiver:
        target = destination(receiver.url("relp"), {"window": 64, "timeout": 60})
        result: List[Any] = []

        def deliver() -> None:
            try:
                result.append(target.deliver(batch, deadline()))
            except DeliveryError as error:
                result.append(error)

        thread = threading.Thread(target=deliver)
        thread.start()
        wait_until(lambda: receiver.count() >= 100 or result, "rsyslog writing 100 events")
        receiver.kill()
        thread.join(60)
        assert result and isinstance(result[0], DeliveryError), \
            f"the batch was done before the kill: make it larger ({result})"
        error = result[0]
        assert error.transient and "\n" not in str(error)
        acknowledged = error.outcome.acknowledged
        assert 0 < acknowledged < len(batch)
        receiver.start()  # the same port; the disk queue is replayed
        wanted = {item.key for item in batch[:acknowledged]}
        receiver.wait_for_keys(wanted, "every acknowledged event written after the restart")
        outcome = target.deliver(batch[acknowledged:], deadline())
        assert outcome.acknowledged == len(batch) - acknowledged
        target.close()
        every = {item.key for item in batch}
        receiver.wait_for_keys(every, "every event written at least once")
        received = receiver.messages()
        bodies: Dict[str, Set[str]] = defaultdict(set)
        for message in received:
            bodies[sd_key(message["sd"])].add(message["msg"])
        assert set(bodies) == {item.key for item in batch}
        assert all(len(found) == 1 for found in bodies.values())  # duplicates are the same


def test_events_over_max_message_size_are_rejected_for_good(rsyslog: Rsyslog) -> None:
    before = rsyslog.count()
    batch = events(6)
    batch[0] = events(1, size=3000)[0]
    batch[4] = events(1, start=4, size=3000)[0]
    target = destination(rsyslog.url("relp"), {"max_message_size": 2000})
    outcome = target.deliver(batch, deadline())
    target.close()
    assert outcome.acknowledged == 6 and [r.position for r in outcome.rejected] == [0, 4]
    assert outcome.rejected_within_prefix() == outcome.rejected
    got = rsyslog.wait_for(before + 4)[before:before + 4]
    assert keys_of(got) == [batch[i].key for i in (1, 2, 3, 5)]


def test_tls_with_a_client_certificate(rsyslog: Rsyslog, certs: Any) -> None:
    before = rsyslog.count()
    target = destination(rsyslog.url("relp-tls"), client_tls(certs))
    assert target.deliver(events(2000), deadline()).acknowledged == 2000
    target.close()
    assert keys_of(rsyslog.wait_for(before + 2000)[before:]) == [e.key for e in events(2000)]


def test_tls_with_an_encrypted_key_and_its_passphrase(rsyslog: Rsyslog, certs: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from receivers.certs import KEY_PASSPHRASE

    monkeypatch.setenv("RELP_KEY_PASSPHRASE", KEY_PASSPHRASE)
    options = client_tls(certs, key=certs.client_key_encrypted,
                         key_passphrase_env="RELP_KEY_PASSPHRASE")
    target = destination(rsyslog.url("relp-tls"), options)
    assert KEY_PASSPHRASE not in repr(target)
    assert target.deliver(events(10), deadline()).acknowledged == 10
    target.close()


def test_a_receiver_wanting_a_client_certificate_refuses_one_without(rsyslog: Rsyslog,
                                                                     certs: Any) -> None:
    with pytest.raises(DeliveryError) as caught:
        destination(rsyslog.url("relp-tls"), {"cacert": certs.ca}).deliver(events(3),
                                                                           deadline())
    text = str(caught.value)
    assert "client certificate" in text and "\n" not in text
    assert caught.value.outcome == Outcome(0, [])


def test_a_wrong_ca_is_refused_in_one_line(rsyslog: Rsyslog, certs: Any) -> None:
    with pytest.raises(DeliveryError) as caught:
        destination(rsyslog.url("relp-tls"), client_tls(certs, cacert=certs.other_ca)).deliver(
            events(3), deadline())
    assert not caught.value.transient and "not trusted" in str(caught.value)


def test_a_wrong_name_is_refused(tmp_path: Any, certs: Any) -> None:
    with Rsyslog(tmp_path, ["relp-tls"], certs=certs, wrong_name=True) as receiver, \
            pytest.raises(DeliveryError) as caught:
        destination(receiver.url("relp-tls"), client_tls(certs)).deliver(events(3), deadline())
    assert not caught.value.transient and "not valid for its name" in str(caught.value)


def test_no_receiver_is_transient() -> None:
    from processes import refused_port

    with refused_port() as port, pytest.raises(DeliveryError) as caught:
        destination(f"relp://127.0.0.1:{port}").deliver(events(3), deadline())
    assert caught.value.transient and "connection refused" in str(caught.value)
    assert os.linesep not in str(caught.value)
