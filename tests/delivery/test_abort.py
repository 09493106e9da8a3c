"""A stop breaks off a delivery blocked on a receiver that hangs (``Destination.abort``, called
from another thread): ``deliver`` fails, transient, with nothing counted as acknowledged that
the receiver did not acknowledge (our own shutdown is not the receiver's clean close), and every
later ``deliver`` fails at once."""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Union

import pytest
from processes import PATIENCE, silent_port, wait_until
from receivers import kafka as kafka_receiver

from hubasync.delivery import Outcome
from hubasync.errors import DeliveryError

from .helpers import deadline, destination, events

HOUR = 3600.0  # without the abort, each would wait this long (Kafka: 300 s) for the receiver

CASES = {
    "syslog": ("syslog+tcp://127.0.0.1:{port}", {"timeout": HOUR}),
    "syslog+tls": ("syslog+tls://127.0.0.1:{port}", {"timeout": HOUR}),  # in its handshake
    "relp": ("relp://127.0.0.1:{port}", {"timeout": HOUR}),
    "relp+tls": ("relp+tls://127.0.0.1:{port}", {"timeout": HOUR}),  # in its handshake
    "hec": ("hec+http://127.0.0.1:{port}", {"timeout": HOUR, "token_env": "TEST_HEC_TOKEN"}),
    "kafka": ("kafka://127.0.0.1:{port}/events", {"timeout": 300.0}),  # librdkafka's most
}


@pytest.mark.parametrize("name", list(CASES))
def test_abort_breaks_off_a_delivery_blocked_on_a_receiver_that_hangs(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if name == "kafka" and kafka_receiver.missing():
        pytest.skip(kafka_receiver.missing() or "")
    monkeypatch.setenv("TEST_HEC_TOKEN", "a-token-for-the-test")
    url, options = CASES[name]
    with silent_port() as (port, accepted):
        target = destination(url.format(port=port), options)
        result: List[Union[Outcome, BaseException]] = []

        def deliver() -> None:
            try:
                result.append(target.deliver(events(50), deadline(HOUR)))
            except BaseException as error:  # noqa: BLE001 (examined below)
                result.append(error)

        thread = threading.Thread(target=deliver, daemon=True)
        thread.start()
        wait_until(lambda: accepted, "the destination's connection")
        thread.join(0.5)
        assert thread.is_alive() and not result, f"not blocked on the receiver: {result}"
        target.abort()
        thread.join(PATIENCE)
        assert not thread.is_alive(), "abort did not break the delivery off"
        error = result[0]
        assert isinstance(error, DeliveryError), f"delivered to a silent receiver: {error}"
        assert error.transient and error.outcome.acknowledged == 0
        assert "\n" not in str(error)
        with pytest.raises(DeliveryError) as later:
            target.deliver(events(1), deadline(HOUR))
        assert later.value.transient and later.value.outcome.acknowledged == 0


def test_abort_before_any_delivery_refuses_to_start_one() -> None:
    options: Dict[str, Any] = {"timeout": HOUR}
    with silent_port() as (port, accepted):
        target = destination(f"relp://127.0.0.1:{port}", options)
        target.abort()
        with pytest.raises(DeliveryError, match="stopped"):
            target.deliver(events(1), deadline(HOUR))
        assert accepted == []
