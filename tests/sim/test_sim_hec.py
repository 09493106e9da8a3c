"""The simulated Splunk HEC answers as Splunk documents it: codes, texts, channels, acks."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from typing import Any, Dict, Iterator, Optional, Tuple

import pytest

from hubasync.sim.hec import HecConfig, HecReceiver

CHANNEL = str(uuid.uuid4())


@pytest.fixture
def hec() -> Iterator[HecReceiver]:
    with HecReceiver(HecConfig(token="tok")) as receiver:
        yield receiver


def post(receiver: HecReceiver, path: str, body: bytes, headers: Optional[Dict[str, str]] = None
         ) -> Tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


AUTH = {"Authorization": "Splunk tok", "X-Splunk-Request-Channel": CHANNEL}


def test_tokens(hec: HecReceiver) -> None:
    event = b'{"event": "x"}'
    assert post(hec, "/services/collector/event", event) == (
        401, {"text": "Token is required", "code": 2})
    assert post(hec, "/services/collector/event", event, {"Authorization": "Bearer tok"}) == (
        401, {"text": "Invalid authorization", "code": 3})
    assert post(hec, "/services/collector/event", event, {"Authorization": "Splunk nope"}) == (
        403, {"text": "Invalid token", "code": 4})


def test_channels_and_acks(hec: HecReceiver) -> None:
    event = b'{"event": "x"} {"event": {"a": 1}, "fields": {"k": "v"}}'
    auth = {"Authorization": "Splunk tok"}
    assert post(hec, "/services/collector/event", event, auth) == (
        400, {"text": "Data channel is missing", "code": 10})
    assert post(hec, "/services/collector/event", event,
                dict(auth, **{"X-Splunk-Request-Channel": "abc"})) == (
        400, {"text": "Invalid data channel", "code": 11})
    assert post(hec, "/services/collector/event", event, AUTH) == (
        200, {"text": "Success", "code": 0, "ackId": 0})
    assert post(hec, "/services/collector/event", event, AUTH)[1]["ackId"] == 1
    assert post(hec, f"/services/collector/ack?channel={CHANNEL}", b'{"acks": [0, 1, 5]}',
                auth) == (200, {"acks": {"0": True, "1": True, "5": False}})
    assert [e["event"] for e in hec.events()] == ["x", {"a": 1}] * 2


def test_bad_events_name_their_number(hec: HecReceiver) -> None:
    path = "/services/collector/event"
    assert post(hec, path, b"", AUTH) == (400, {"text": "No data", "code": 5})
    assert post(hec, path, b'{"event": 1} {nope', AUTH) == (
        400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 1})
    assert post(hec, path, b'{"event": 1} {"fields": {}}', AUTH)[1]["code"] == 12
    assert post(hec, path, b'{"event": ""}', AUTH)[1] == {
        "text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0}


def test_ack_disabled_busy_and_too_large() -> None:
    with HecReceiver(HecConfig(token="tok", ack=False, max_content_length=50)) as receiver:
        assert post(receiver, "/services/collector/event", b'{"event": 1}', AUTH) == (
            200, {"text": "Success", "code": 0})
        assert post(receiver, "/services/collector/ack", b'{"acks": [0]}', AUTH) == (
            400, {"text": "ACK is disabled", "code": 14})
        status, _ = post(receiver, "/services/collector/event", b'{"event": "' + b"x" * 60 + b'"}',
                         AUTH)
        assert status == 413
        receiver.busy(1)
        assert post(receiver, "/services/collector/event", b'{"event": 1}', AUTH) == (
            503, {"text": "Server is busy", "code": 9})


def test_the_cli_runs_a_hec_beside_the_hub(tmp_path: Any) -> None:
    out = open(tmp_path / "out", "w+")  # noqa: SIM115 (read while the child runs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-m", "hubasync.sim", "--port", "0", "--events",
                              "10", "--hec-port", "0", "--hec-token", "tok"],
                             stdout=out, stderr=subprocess.DEVNULL, env=env)
    try:
        from processes import wait_until

        def hec_line() -> Optional[str]:
            text = (tmp_path / "out").read_text()
            return next((x for x in text.splitlines() if x.startswith("# HEC: ")), None)

        line = wait_until(hec_line, "the HEC line")
        url = line.split()[2]
        assert url.startswith("hec+http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/services/collector/health")
        assert json.loads(connection.getresponse().read()) == {"text": "HEC is healthy",
                                                               "code": 17}
        connection.close()
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
        out.close()
