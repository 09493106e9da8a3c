"""Kafka against librdkafka's mock cluster (a real Kafka protocol endpoint on loopback): keys
and payloads read back, the client in another process, messages too large rejected for good,
a cluster gone is transient, and confluent-kafka missing is one line saying what to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest
from receivers.kafka import MockKafka, missing

from hubasync.delivery import parse_destination
from hubasync.delivery.records import Outgoing
from hubasync.errors import DeliveryError, UsageError

from .helpers import deadline, destination, events

needs_kafka = pytest.mark.skipif(missing() is not None, reason=missing() or "")
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "src")


@pytest.fixture(scope="module")
def kafka() -> Iterator[MockKafka]:
    if missing() is not None:
        pytest.skip(missing() or "")
    with MockKafka(brokers=3) as cluster:
        yield cluster


@needs_kafka
def test_events_arrive_with_their_keys(kafka: MockKafka) -> None:
    batch = events(3000)
    target = destination(kafka.url("arrive"))
    try:
        outcome = target.deliver(batch, deadline())
    finally:
        target.close()
    assert outcome.acknowledged == 3000 and outcome.rejected == []
    got = dict(kafka.consume("arrive", 3000))
    assert got == {item.key.encode(): item.event for item in batch}


@needs_kafka
def test_the_client_may_run_in_another_process(kafka: MockKafka, tmp_path: Any) -> None:
    script = tmp_path / "deliver.py"
    script.write_text(
        "import json, sys, time\n"
        f"sys.path.insert(0, {SRC!r})\n"
        "from hubasync.delivery import Outgoing, open_destination, parse_destination\n"
        "target = open_destination(parse_destination(sys.argv[1], {}, '--to'), 'demo')\n"
        "batch = [Outgoing(n, f'other-{n}', b'{\"n\": %d}' % n) for n in range(500)]\n"
        "outcome = target.deliver(batch, time.monotonic() + 60)\n"
        "target.close()\n"
        "print(json.dumps(outcome.acknowledged))\n")
    result = subprocess.run([sys.executable, str(script), kafka.url("other")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == 500
    assert result.stderr == ""  # librdkafka's own log lines do not reach stderr
    got = dict(kafka.consume("other", 500))
    assert got[b"other-7"] == b'{"n": 7}' and len(got) == 500


@needs_kafka
def test_a_message_too_large_is_rejected_for_good(kafka: MockKafka) -> None:
    batch = events(5)
    batch[3] = Outgoing(3, "huge", b'{"x": "' + b"y" * 1_100_000 + b'"}')
    target = destination(kafka.url("large"))
    outcome = target.deliver(batch, deadline())
    target.close()
    assert outcome.acknowledged == 5 and [r.position for r in outcome.rejected] == [3]
    assert "SIZE_TOO_LARGE" in outcome.rejected[0].reason
    assert sorted(dict(kafka.consume("large", 4))) == sorted(
        batch[i].key.encode() for i in (0, 1, 2, 4))


@needs_kafka
def test_a_cluster_gone_is_transient_and_nothing_is_claimed() -> None:
    cluster = MockKafka(brokers=1)
    target = destination(cluster.url("gone"), {"timeout": 2})
    assert target.deliver(events(10), deadline()).acknowledged == 10
    cluster.close()
    with pytest.raises(DeliveryError) as caught:
        target.deliver(events(10, start=10), deadline(20))
    error = caught.value
    assert error.transient and error.outcome.acknowledged == 0 and "\n" not in str(error)
    assert str(error).startswith("kafka://")


@needs_kafka
def test_the_sasl_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_PASSWORD", "kafka-pa55word-secret")
    config = parse_destination("kafka://127.0.0.1:9/t", {
        "security_protocol": "sasl_plaintext", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "hub", "password_env": "KAFKA_PASSWORD", "timeout": 0.5}, "--to")
    from hubasync.delivery import open_destination

    target = open_destination(config, "demo")
    with pytest.raises(DeliveryError) as caught:
        target.deliver(events(2), deadline(10))
    for text in (str(caught.value), repr(target), repr(config)):
        assert "kafka-pa55word-secret" not in text


def test_without_confluent_kafka_the_error_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # import fails
    config = parse_destination("kafka://127.0.0.1:9092/t", {}, "--to")
    from hubasync.delivery import open_destination

    with pytest.raises(UsageError) as caught:
        open_destination(config, "demo")
    assert caught.value.exit_code == 2
    assert "pip install 'hubasync[kafka]'" in str(caught.value)


def test_the_core_does_not_import_confluent_kafka() -> None:
    code = ("import sys; import hubasync.delivery, hubasync.delivery.relp, "
            "hubasync.delivery.hec; print('confluent_kafka' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=SRC), timeout=60)
    assert result.stdout.strip() == "False", result.stderr
