"""Splunk HEC: the client against the simulated HEC (hubasync-sim), over real sockets.

The simulator was written from Splunk's documentation; no real Splunk runs here."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from hubasync.errors import DeliveryError, UsageError
from hubasync.sim.hec import HecConfig, HecReceiver

from .helpers import deadline, destination, events

TOKEN = "0f3c9a52-hec-t0ken-secret"


@pytest.fixture
def hec(monkeypatch: pytest.MonkeyPatch) -> Iterator[HecReceiver]:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    with HecReceiver(HecConfig(token=TOKEN, retry_after=2)) as receiver:
        yield receiver


def url_of(receiver: HecReceiver) -> str:
    return "hec+" + receiver.url


OPTIONS = {"token_env": "HEC_TOKEN", "ack_poll_interval": 0.05}


def test_events_arrive_with_their_keys_once_indexed(hec: HecReceiver) -> None:
    batch = events(300)
    target = destination(url_of(hec), dict(OPTIONS, sourcetype="arctic:event", index="threat",
                                           max_batch_bytes=8192))
    outcome = target.deliver(batch, deadline())
    target.close()
    assert outcome.acknowledged == 300 and outcome.rejected == []
    got = hec.events()
    assert [e["fields"]["hubasync_key"] for e in got] == [item.key for item in batch]
    assert [e["event"] for e in got] == [json.loads(item.event) for item in batch]
    assert {e["sourcetype"] for e in got} == {"arctic:event"} and {e["index"] for e in got} == {
        "threat"}
    channels = {e["channel"] for e in got}
    assert len(channels) == 1 and uuid.UUID(channels.pop())
    assert len({e["ackId"] for e in got}) > 1  # several requests, each acknowledged


def test_nothing_counts_until_the_indexer_acknowledges(hec: HecReceiver) -> None:
    hec.hold_acks(True)
    target = destination(url_of(hec), dict(OPTIONS, ack_timeout=1))
    with pytest.raises(DeliveryError) as caught:
        target.deliver(events(20), deadline())
    assert caught.value.transient and caught.value.outcome.acknowledged == 0
    assert "not acknowledged" in str(caught.value)
    hec.hold_acks(False)
    assert target.deliver(events(20), deadline()).acknowledged == 20


def test_busy_is_transient_and_the_requests_before_it_count(hec: HecReceiver) -> None:
    hec.busy(1, after=2)  # the third request answers 503 Server is busy
    batch = events(100)
    target = destination(url_of(hec), dict(OPTIONS, max_batch_bytes=2048))
    with pytest.raises(DeliveryError) as caught:
        target.deliver(batch, deadline())
    error = caught.value
    assert error.transient and error.retry_after == 2.0 and "Server is busy" in str(error)
    done = error.outcome.acknowledged
    assert 0 < done < 100
    assert [e["fields"]["hubasync_key"] for e in hec.events()] == [i.key for i in batch[:done]]
    assert target.deliver(batch[done:], deadline()).acknowledged == 100 - done


def test_an_invalid_event_is_rejected_and_the_others_sent_again(hec: HecReceiver) -> None:
    batch = events(5)
    batch[2] = type(batch[2])(2, "bad-one", b'""')  # a blank event: 400 code 13
    target = destination(url_of(hec), OPTIONS)
    outcome = target.deliver(batch, deadline())
    assert outcome.acknowledged == 5
    assert [r.position for r in outcome.rejected] == [2]
    assert "Event field cannot be blank" in outcome.rejected[0].reason
    keys = [e["fields"]["hubasync_key"] for e in hec.events()]
    # the events before the invalid one may have been indexed already: sent again, same keys
    assert set(keys) == {batch[i].key for i in (0, 1, 3, 4)}
    assert keys[-4:] == [batch[i].key for i in (0, 1, 3, 4)]


def test_a_body_too_large_is_split_and_a_lone_event_rejected(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    with HecReceiver(HecConfig(token=TOKEN, max_content_length=3000)) as receiver:
        batch = events(40)
        batch[7] = events(1, start=7, size=5000)[0]
        target = destination(url_of(receiver), dict(OPTIONS, max_batch_bytes=100_000))
        outcome = target.deliver(batch, deadline())
        assert outcome.acknowledged == 40 and [r.position for r in outcome.rejected] == [7]
        assert "too large" in outcome.rejected[0].reason
        keys = [e["fields"]["hubasync_key"] for e in receiver.events()]
        assert sorted(keys) == sorted(item.key for i, item in enumerate(batch) if i != 7)
        assert receiver.statuses.get(413, 0) >= 2


def test_acknowledgement_off_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    with HecReceiver(HecConfig(token=TOKEN, ack=False)) as receiver, \
            pytest.raises(UsageError) as caught:
        destination(url_of(receiver), OPTIONS).deliver(events(3), deadline())
    assert caught.value.exit_code == 2 and "acknowledgement is off" in str(caught.value)


def test_a_refused_token_is_a_configuration_error_and_never_shown(hec: HecReceiver,
                                                                   monkeypatch: Any) -> None:
    monkeypatch.setenv("WRONG_TOKEN", "wrong-t0ken-value")
    target = destination(url_of(hec), dict(OPTIONS, token_env="WRONG_TOKEN"))
    with pytest.raises(UsageError) as caught:
        target.deliver(events(3), deadline())
    assert "Invalid token" in str(caught.value) and "wrong-t0ken-value" not in str(caught.value)
    assert "wrong-t0ken-value" not in repr(target) and TOKEN not in repr(target)


class _Echo(BaseHTTPRequestHandler):
    """A broken HEC that quotes the request's Authorization header in its error."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"text": f"bad header {self.headers['Authorization']}",
                           "code": 99}).encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_token_echoed_by_the_receiver_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"hec+http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(DeliveryError) as caught:
            destination(url, OPTIONS).deliver(events(2), deadline())
    finally:
        server.shutdown()
        server.server_close()
    text = str(caught.value)
    assert "bad header Splunk REDACTED" in text and TOKEN not in text
    assert not caught.value.transient


def test_https_with_the_receivers_ca_and_a_wrong_one(certs: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    config = HecConfig(token=TOKEN, tls_cert=certs.server_cert, tls_key=certs.server_key)
    with HecReceiver(config) as receiver:
        url = url_of(receiver)
        assert url.startswith("hec+https://")
        outcome = destination(url, dict(OPTIONS, cacert=certs.ca)).deliver(events(5), deadline())
        assert outcome.acknowledged == 5
        with pytest.raises(DeliveryError) as caught:
            destination(url, dict(OPTIONS, cacert=certs.other_ca)).deliver(events(5),
                                                                           deadline())
    assert not caught.value.transient and "not trusted" in str(caught.value)


def test_no_receiver_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    from processes import refused_port

    monkeypatch.setenv("HEC_TOKEN", TOKEN)
    with refused_port() as port, pytest.raises(DeliveryError) as caught:
        destination(f"hec+http://127.0.0.1:{port}", OPTIONS).deliver(events(3), deadline())
    assert caught.value.transient and "connection refused" in str(caught.value)
