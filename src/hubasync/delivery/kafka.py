"""Kafka (``kafka://BROKER[,BROKER]/TOPIC``), through the optional ``confluent-kafka``
(``pip install 'hubasync[kafka]'``), imported only when a Kafka destination is opened.

An idempotent producer (``enable.idempotence=true``, so ``acks=all``) sends each event with its
key as the message key; an event is acknowledged only by its delivery report without error.
``produce`` runs in a tight loop with ``poll(0)``; the delivery callback only counts, and keeps
the keys of failures. A message too large for the brokers is rejected for good; any other
failure is transient. A fatal producer error (``KafkaError.fatal()``), or reports still missing
at the deadline, purge the producer's queue and end the producer (the next batch builds a new
one): what was not reported delivered is sent again by the caller.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import DeliveryError, UsageError
from .addresses import DestinationConfig
from .records import Outcome, Outgoing, Rejection

INSTALL_HINT = ("the kafka:// destination needs confluent-kafka: pip install 'hubasync[kafka]' "
                "(or pip install confluent-kafka)")
# librdkafka's own log lines (connection attempts...) go here, not to stderr: the caller's
# messages are one line each. A handler added to this logger sees them.
LOG = logging.getLogger("hubasync.delivery.kafka")
LOG.addHandler(logging.NullHandler())
LOG.propagate = False
# Delivery errors that are the message's own fault: sending it again fails again.
_FOR_GOOD = ("MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "INVALID_RECORD",
             "CORRUPT_MESSAGE", "RECORD_LIST_TOO_LARGE")


def load_kafka() -> Any:
    """The ``confluent_kafka`` module, or a UsageError saying what to install."""
    try:
        import confluent_kafka  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return confluent_kafka


def producer_settings(config: DestinationConfig) -> Dict[str, Any]:
    """The librdkafka configuration of a destination (secrets included: never print it)."""
    options = config.options
    settings: Dict[str, Any] = {
        "bootstrap.servers": ",".join(config.brokers),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": options["linger_ms"],
        "compression.type": options["compression"],
        "message.timeout.ms": int(float(options["timeout"]) * 1000),
        "socket.timeout.ms": max(10, int(float(options["timeout"]) * 1000)),
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "security.protocol": options["security_protocol"],
        "client.id": "hubasync",
    }
    if options["cacert"] is not None:
        settings["ssl.ca.location"] = options["cacert"]
    if options["cert"] is not None:
        settings["ssl.certificate.location"] = options["cert"]
        settings["ssl.key.location"] = options["key"]
    passphrase = config.secret("key_passphrase")
    if passphrase is not None:
        settings["ssl.key.password"] = passphrase.reveal()
    if options["sasl_mechanism"] is not None:
        settings["sasl.mechanism"] = options["sasl_mechanism"]
        settings["sasl.username"] = options["sasl_username"]
        password = config.secret("password")
        if password is not None:
            settings["sasl.password"] = password.reveal()
    return settings


class _Reports:
    """What the delivery callback found: a count of successes, the failures with their keys,
    and a fatal error if one came."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed: List[Tuple[Optional[bytes], str, bool]] = []  # key, reason, for good
        self.fatal: Optional[str] = None

    def on_delivery(self, error: Any, message: Any) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failed.append((message.key(), f"{error.name()}: {error.str()}",
                                error.name() in _FOR_GOOD))

    def on_error(self, error: Any) -> None:
        if error.fatal():
            self.fatal = f"{error.name()}: {error.str()}"


class KafkaDestination:
    """Delivers batches to a Kafka topic with an idempotent producer (see the module)."""

    def __init__(self, config: DestinationConfig, share: str) -> None:
        self.name = config.name
        self._config = config
        self._kafka = load_kafka()
        self._topic = config.topic
        self._producer: Any = None
        self._reports = _Reports()
        self._aborted = False  # set by another thread (a stop), read between polls

    def __repr__(self) -> str:
        return f"KafkaDestination({self.name!r})"

    def _make_producer(self) -> Any:
        settings = producer_settings(self._config)
        settings["on_delivery"] = self._reports.on_delivery
        settings["error_cb"] = self._reports.on_error
        settings["logger"] = LOG
        try:
            return self._kafka.Producer(settings)
        except self._kafka.KafkaException as exc:
            raise UsageError(f"{self.name}: the Kafka producer cannot be made: "
                             f"{_one_line(exc)}") from None

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        if self._aborted:
            raise DeliveryError(f"{self.name}: stopped", transient=True, outcome=Outcome())
        if self._producer is None:
            self._producer = self._make_producer()
        producer, reports = self._producer, self._reports
        reports.delivered, reports.failed = 0, []
        produce, poll, topic = producer.produce, producer.poll, self._topic
        kafka_exception = self._kafka.KafkaException
        total = len(batch)
        keys = [item.key.encode("utf-8", "surrogateescape") for item in batch]
        sent = 0
        try:
            for item, key in zip(batch, keys):
                while True:
                    try:
                        produce(topic, item.event, key)
                        break
                    except BufferError:  # the local queue is full: let reports drain it
                        poll(0.05)
                        if reports.fatal is not None or time.monotonic() > deadline:
                            raise _Stop() from None
                        if self._aborted:
                            raise _Stop("stopped") from None
                    except kafka_exception as exc:
                        if not _is_bad_message(exc):
                            raise _Stop(_one_line(exc)) from None
                        reports.failed.append((key, _one_line(exc), True))
                        break
                sent += 1
                poll(0)
                if reports.fatal is not None:
                    raise _Stop()
            while reports.delivered + len(reports.failed) < total:
                if reports.fatal is not None or time.monotonic() >= deadline:
                    raise _Stop()
                if self._aborted:
                    raise _Stop("stopped")
                producer.flush(min(deadline - time.monotonic(), 1.0))
        except _Stop as stop:
            self._abandon()
            reason = (f"a fatal producer error: {self._reports.fatal}" if self._reports.fatal
                      else stop.args[0] if stop.args else "delivery reports missing at the "
                      "deadline")
            self._reports.fatal = None
            outcome = self._outcome(keys, sent)
            raise DeliveryError(f"{self.name}: {reason}; {total - outcome.acknowledged} "
                                "events to send again", transient=True, outcome=outcome) from None
        if not reports.failed:
            return Outcome(total, [])
        outcome = self._outcome(keys, total)
        if outcome.acknowledged < total:
            reason = next(r for _, r, good in reports.failed if not good)
            raise DeliveryError(f"{self.name}: delivery failed: {reason}", transient=True,
                                outcome=outcome)
        return outcome

    def _outcome(self, keys: List[bytes], sent: int) -> Outcome:
        """The prefix before the first event not reported delivered, and the rejections.

        Only failures carry keys (successes are only counted): when every message sent has its
        report, an event counts as delivered unless a failure names its key. When reports are
        missing, nothing is known delivered. Keys are taken as unique within a batch (with the
        same key twice, a failure counts against the first: the prefix can only be shorter).
        """
        reports = self._reports
        good_for_nothing = {key: reason for key, reason, good in reports.failed if good}
        rejected: List[Rejection] = []
        for index, key in enumerate(keys[:sent]):
            if key in good_for_nothing:
                rejected.append(Rejection(index, f"Kafka refused it: {good_for_nothing.pop(key)}"))
        if reports.delivered + len(reports.failed) < sent:
            return Outcome(0, rejected)
        failed = {key for key, _, good in reports.failed if not good}
        prefix = next((i for i, key in enumerate(keys[:sent]) if key in failed), sent)
        return Outcome(prefix, rejected)

    def _abandon(self) -> None:
        """End a producer that failed or ran out of time: purge what it holds (queued and in
        flight: reported failed, though some may have arrived) and collect the last reports;
        the next batch makes a new producer."""
        producer, self._producer = self._producer, None
        try:
            producer.purge(True, True)
            producer.flush(1.0)
        except Exception:  # noqa: BLE001 (ending a broken producer: nothing more to learn)
            pass

    def abort(self) -> None:
        self._aborted = True

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(5.0)


class _Stop(Exception):
    """The batch cannot finish on this producer."""


def _is_bad_message(exc: Any) -> bool:
    try:
        return str(exc.args[0].name()) in _FOR_GOOD
    except (AttributeError, IndexError):
        return False


def _one_line(exc: BaseException) -> str:
    try:
        error = exc.args[0]
        text = f"{error.name()}: {error.str()}"
    except (AttributeError, IndexError):
        text = str(exc)
    return " ".join(text.split())
