"""Splunk HTTP Event Collector without sockets: the request bodies, and what each answer means.

Facts from Splunk's documentation of HEC: events are posted to ``/services/collector/event``
as JSON objects one after another, ``{"event": ..., "fields": {...}}`` plus optional
``sourcetype``, ``source``, ``index``; the token goes in ``Authorization: Splunk TOKEN``; a
channel (a GUID) in ``X-Splunk-Request-Channel``. With indexer acknowledgement on, a
successful answer is ``{"text": "Success", "code": 0, "ackId": N}`` and ``POST
/services/collector/ack?channel=GUID`` with ``{"acks": [N, ...]}`` answers ``{"acks": {"N":
true, ...}}``, true once the events are indexed. The status codes of HEC's answers:

=====  ====  =====================================  ==========================================
code   HTTP  text                                   here
=====  ====  =====================================  ==========================================
0      200   Success                                accepted: wait for its ackId (none: ack off)
1      403   Token disabled                         configuration error (exit 2)
2      401   Token is required                      configuration error
3      401   Invalid authorization                  configuration error
4      403   Invalid token                          configuration error
5      400   No data                                a bug of ours: not retried
6      400   Invalid data format                    event ``invalid-event-number`` rejected
7      400   Incorrect index                        configuration error (the ``index`` option)
8      500   Internal server error                  transient
9      503   Server is busy                         transient, after ``Retry-After`` if given
10     400   Data channel is missing                acknowledgement off: configuration error
11     400   Invalid data channel                   not retried
12     400   Event field is required                event ``invalid-event-number`` rejected
13     400   Event field cannot be blank            event ``invalid-event-number`` rejected
14     400   ACK is disabled                        configuration error
15     400   Error in handling indexed fields       event ``invalid-event-number`` rejected
=====  ====  =====================================  ==========================================

413 (the body too large) splits the request in halves; a single event answered 413 is rejected
for good. Other 5xx are transient, other 4xx are not retried. Which events of a batch Splunk
indexed before an invalid one is not something its answer says with an ``ackId``: every event
of the batch but the invalid one is sent again (duplicates carry the same key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .records import Outgoing

EVENT_PATH = "/services/collector/event"
ACK_PATH = "/services/collector/ack"

CONFIG_CODES = {1, 2, 3, 4, 7, 10, 14}
EVENT_CODES = {6, 12, 13, 15}

ACCEPTED, REJECT_EVENT, TOO_LARGE, TRANSIENT, CONFIGURATION, FAILED = (
    "accepted", "reject-event", "too-large", "transient", "configuration", "failed")


def metadata(sourcetype: Optional[str], source: Optional[str], index: Optional[str]) -> bytes:
    """The JSON members every event of a destination carries, with their leading commas."""
    members = [(name, value) for name, value in (("sourcetype", sourcetype), ("source", source),
                                                  ("index", index)) if value is not None]
    return b"".join(b",%s:%s" % (json.dumps(n).encode(), json.dumps(v).encode())
                    for n, v in members)


def event_records(batch: Sequence[Outgoing], key_field: str, meta: bytes) -> List[bytes]:
    """One HEC event object per event: the event's JSON bytes as they are, its key in
    ``fields``."""
    field = json.dumps(key_field).encode()
    return [b'{"event":%s,"fields":{%s:%s}%s}' % (item.event, field, json.dumps(item.key).encode(),
                                                   meta) for item in batch]


def requests(sizes: Sequence[int], indexes: Sequence[int], limit: int) -> List[List[int]]:
    """The events (by index) grouped into requests of at most ``limit`` bytes each, in order.
    An event larger than ``limit`` goes alone (and gets 413 or not: the receiver decides)."""
    groups: List[List[int]] = []
    current: List[int] = []
    size = 0
    for index in indexes:
        if current and size + sizes[index] > limit:
            groups.append(current)
            current, size = [], 0
        current.append(index)
        size += sizes[index]
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class Answer:
    """What an answer to a posted batch means."""

    kind: str  # ACCEPTED, REJECT_EVENT, TOO_LARGE, TRANSIENT, CONFIGURATION, FAILED
    text: str  # for messages: the status and HEC's own text, one line
    ack_id: Optional[int] = None
    event_number: Optional[int] = None  # REJECT_EVENT: the event's index in the request
    retry_after: Optional[float] = None


def _body(data: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after(headers: Mapping[str, str]) -> Optional[float]:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def _describe(status: int, body: Dict[str, Any], raw: bytes) -> str:
    text = body.get("text")
    code = body.get("code")
    if isinstance(text, str):
        detail = f"{text} (code {code})" if isinstance(code, int) else text
    else:
        detail = raw[:120].decode("utf-8", "replace")
    words = " ".join("".join(c if c.isprintable() else " " for c in detail).split())
    return f"HTTP {status}: {words}" if words else f"HTTP {status}"


def event_answer(status: int, headers: Mapping[str, str], data: bytes, events: int) -> Answer:
    """What the answer to a batch of ``events`` events posted to the event endpoint means."""
    body = _body(data)
    text = _describe(status, body, data)
    code = body.get("code")
    if status == 200 and code in (0, None):
        ack = body.get("ackId")
        if isinstance(ack, int) and not isinstance(ack, bool) and ack >= 0:
            return Answer(ACCEPTED, text, ack_id=ack)
        return Answer(CONFIGURATION, "the HEC answered without an ackId: indexer "
                                     "acknowledgement is off for this token (turn it on: "
                                     "useACK)")
    if status == 413:
        return Answer(TOO_LARGE, text)
    if code in CONFIG_CODES or status in (401, 403):
        if code in (10, 14):
            return Answer(CONFIGURATION, f"indexer acknowledgement is off for this token (turn "
                                         f"it on: useACK): {text}")
        return Answer(CONFIGURATION, text)
    number = body.get("invalid-event-number")
    if status == 400 and isinstance(number, int) and not isinstance(number, bool):
        if 0 <= number < events:
            return Answer(REJECT_EVENT, text, event_number=number)
        return Answer(FAILED, f"{text}, naming event {number} of {events}")
    if status == 503 or status >= 500 or status == 429:
        return Answer(TRANSIENT, text, retry_after=_retry_after(headers))
    return Answer(FAILED, text)


def ack_request(ack_ids: Sequence[int]) -> bytes:
    return json.dumps({"acks": list(ack_ids)}).encode()


def ack_answer(status: int, headers: Mapping[str, str], data: bytes) -> Tuple[Answer, Dict[int,
                                                                                          bool]]:
    """What the answer to an acknowledgement query means, and the acks it gives (id: true once
    indexed)."""
    body = _body(data)
    text = _describe(status, body, data)
    acks = body.get("acks")
    if status == 200 and isinstance(acks, dict):
        found: Dict[int, bool] = {}
        for key, value in acks.items():
            try:
                found[int(key)] = value is True
            except ValueError:
                continue
        return Answer(ACCEPTED, text), found
    if status == 200:
        return Answer(FAILED, f"an acknowledgement answer without acks: {text}"), {}
    answer = event_answer(status, headers, data, 0)
    if answer.kind == REJECT_EVENT or answer.kind == TOO_LARGE:
        answer = Answer(FAILED, text)
    return answer, {}
