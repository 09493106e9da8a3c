"""The Kafka client's bookkeeping, against a fake producer (no broker): which prefix is
claimed when reports fail, go missing, or a fatal error ends the producer."""

from __future__ import annotations

import sys
import types
from typing import Any, Callable, Dict, List, Optional

import pytest

from hubasync.delivery import open_destination, parse_destination
from hubasync.errors import DeliveryError

from .helpers import deadline, events


class FakeError:
    def __init__(self, name: str, fatal: bool = False) -> None:
        self._name, self._fatal = name, fatal

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._name.lower()

    def fatal(self) -> bool:
        return self._fatal


class FakeMessage:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def key(self) -> bytes:
        return self._key


class FakeProducer:
    """Reports each message at the next poll as ``plan(index)`` says: None (delivered), an
    error name, "fatal" (a fatal error, no report), or "silent" (no report until purged)."""

    plan: Callable[[int], Optional[str]] = staticmethod(lambda index: None)
    purge_reports = True  # a purge reports the purged messages as failed
    made: List[FakeProducer] = []

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings
        self.queue: List[bytes] = []
        self.silent: List[bytes] = []
        self.count = 0
        FakeProducer.made.append(self)

    def produce(self, topic: str, value: bytes, key: bytes) -> None:
        self.queue.append(key)

    def poll(self, timeout: float = 0) -> int:
        on_delivery, on_error = self.settings["on_delivery"], self.settings["error_cb"]
        queue, self.queue = self.queue, []
        for key in queue:
            verdict = FakeProducer.plan(self.count)
            self.count += 1
            if verdict is None:
                on_delivery(None, FakeMessage(key))
            elif verdict == "fatal":
                on_error(FakeError("_FENCED", fatal=True))
                self.silent.append(key)
            elif verdict == "silent":
                self.silent.append(key)
            else:
                on_delivery(FakeError(verdict), FakeMessage(key))
        return len(queue)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return len(self.silent)

    def purge(self, queued: bool, in_flight: bool) -> None:
        for key in self.silent if FakeProducer.purge_reports else ():
            self.settings["on_delivery"](FakeError("_PURGE_INFLIGHT"), FakeMessage(key))
        self.silent = []


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = types.ModuleType("confluent_kafka")
    module.Producer = FakeProducer  # type: ignore[attr-defined]
    module.KafkaException = type("KafkaException", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "confluent_kafka", module)
    FakeProducer.made = []
    FakeProducer.purge_reports = True
    return module


def target() -> Any:
    return open_destination(parse_destination("kafka://127.0.0.1:9/t", {"timeout": 1}, "--to"),
                            "demo")


def test_settings_are_idempotent_with_acks_all(fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda index: None)
    assert target().deliver(events(20), deadline()).acknowledged == 20
    settings = FakeProducer.made[0].settings
    assert settings["enable.idempotence"] is True and settings["acks"] == "all"


def test_a_failed_report_ends_the_prefix(fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda index: "_MSG_TIMED_OUT" if index == 6 else None)
    with pytest.raises(DeliveryError) as caught:
        target().deliver(events(20), deadline())
    assert caught.value.transient and caught.value.outcome.acknowledged == 6


def test_a_message_too_large_counts_as_passed(fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda i: "MSG_SIZE_TOO_LARGE" if i in (2, 5) else None)
    outcome = target().deliver(events(8), deadline())
    assert outcome.acknowledged == 8 and [r.position for r in outcome.rejected] == [2, 5]


def test_a_fatal_error_rebuilds_the_producer_and_claims_only_what_was_reported(
        fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda index: "fatal" if index == 9 else None)
    destination = target()
    with pytest.raises(DeliveryError) as caught:
        destination.deliver(events(30), deadline())
    error = caught.value
    assert error.transient and "fatal" in str(error)
    assert error.outcome.acknowledged == 9
    FakeProducer.plan = staticmethod(lambda index: None)
    assert destination.deliver(events(5), deadline()).acknowledged == 5
    assert len(FakeProducer.made) == 2  # a new producer after the fatal error


def test_reports_missing_at_the_deadline_claim_nothing_unknown(fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda index: "silent" if index == 3 else None)
    with pytest.raises(DeliveryError) as caught:
        target().deliver(events(10), deadline(1.5))
    assert caught.value.transient and caught.value.outcome.acknowledged == 3


def test_reports_that_never_come_claim_nothing(fake_kafka: Any) -> None:
    FakeProducer.plan = staticmethod(lambda index: "silent" if index == 3 else None)
    FakeProducer.purge_reports = False
    with pytest.raises(DeliveryError) as caught:
        target().deliver(events(10), deadline(1.5))
    assert caught.value.transient and caught.value.outcome.acknowledged == 0
