"""A Kafka for delivery tests: librdkafka's mock cluster, a real Kafka protocol endpoint on
loopback ports, held by this test process so that the hubasync side may run in another one.

    with MockKafka(brokers=3) as kafka:
        kafka.bootstrap                 # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
        kafka.url("events")             # "kafka://127.0.0.1:P1,.../events"
        kafka.consume("events", 100)    # [(key, value), ...] read back, every partition

The cluster lives as long as the client that created it (a producer with
``test.mock.num.brokers``); librdkafka announces its bootstrap servers in a log line, which is
how they are learnt. Without confluent_kafka, :func:`missing` says what to install.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, List, Optional, Tuple

from processes import PATIENCE, wait_until

try:
    import confluent_kafka
except ImportError:  # the tests skip, naming the package
    confluent_kafka = None


def missing() -> Optional[str]:
    if confluent_kafka is None:
        return "confluent-kafka is not installed (pip install 'hubasync[kafka]')"
    return None


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: List[str] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.guard:
            self.lines.append(record.getMessage())


class MockKafka:
    """librdkafka's mock cluster (see the module)."""

    def __init__(self, brokers: int = 3) -> None:
        assert confluent_kafka is not None, missing()
        self._lines = _Lines()
        self._logger = logging.getLogger(f"mock-kafka-{id(self)}")
        self._logger.propagate = False
        self._logger.addHandler(self._lines)
        self._logger.setLevel(logging.DEBUG)
        self._holder: Any = confluent_kafka.Producer({
            "test.mock.num.brokers": brokers, "logger": self._logger})
        self.bootstrap = wait_until(self._announced, "the mock cluster's bootstrap servers")

    def _announced(self) -> Optional[str]:
        self._holder.poll(0.05)
        with self._lines.guard:
            for line in self._lines.lines:
                found = re.search(r"Mock cluster enabled: .* replaced with (\S+)", line)
                if found:
                    return found.group(1)
        return None

    def url(self, topic: str) -> str:
        return f"kafka://{self.bootstrap}/{topic}"

    def consume(self, topic: str, count: int, timeout: float = PATIENCE) -> List[Tuple[bytes,
                                                                                     bytes]]:
        """At least ``count`` messages of ``topic``, from the start of every partition."""
        assert confluent_kafka is not None
        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False, "logger": self._logger})
        try:
            metadata = consumer.list_topics(topic, timeout=timeout)
            partitions = metadata.topics[topic].partitions
            consumer.assign([confluent_kafka.TopicPartition(topic, p,
                                                            confluent_kafka.OFFSET_BEGINNING)
                             for p in partitions])
            found: List[Tuple[bytes, bytes]] = []
            deadline = time.monotonic() + timeout
            while len(found) < count:
                if time.monotonic() > deadline:
                    raise AssertionError(f"read {len(found)} of {count} messages of {topic}")
                for message in consumer.consume(10000, 0.5):
                    if message.error() is None:
                        found.append((message.key(), message.value()))
            return found
        finally:
            consumer.close()

    def close(self) -> None:
        """Stop the cluster: its brokers stop listening."""
        if self._holder is not None:
            self._holder.flush(0)
            self._holder = None

    def __enter__(self) -> MockKafka:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
