"""Delivery of events to where a SOC consumes them, each destination moved only over what its
receiver acknowledged: syslog (TCP, TLS), RELP, Splunk HEC, Kafka.

    from hubasync.delivery import Outgoing, open_destination, parse_destination
    config = parse_destination("relp+tls://siem:2514?cacert=/etc/ca.pem", {}, "--to")
    destination = open_destination(config, share="demo")
    outcome = destination.deliver(batch, deadline=time.monotonic() + 60)

See docs/delivery.md for each destination's URL, options and guarantees.
"""

from __future__ import annotations

from .addresses import DestinationConfig, parse_destination
from .records import Destination, Outcome, Outgoing, Rejection


def open_destination(config: DestinationConfig, share: str) -> Destination:
    """The client of a checked destination; ``share`` names the events' share (syslog MSGID).

    Nothing connects yet: the first ``deliver`` does. Kafka needs the optional
    ``confluent-kafka`` (``pip install 'hubasync[kafka]'``): without it, a ``UsageError``.
    """
    if config.kind == "syslog":
        from .syslog import SyslogDestination

        return SyslogDestination(config, share)
    if config.kind == "relp":
        from .relp import RelpDestination

        return RelpDestination(config, share)
    if config.kind == "hec":
        from .hec import HecDestination

        return HecDestination(config, share)
    from .kafka import KafkaDestination

    return KafkaDestination(config, share)


__all__ = ["Destination", "DestinationConfig", "Outcome", "Outgoing", "Rejection",
           "open_destination", "parse_destination"]
