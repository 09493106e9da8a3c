"""What the HEC's answers mean, without a network (Splunk's documented codes and texts)."""

from __future__ import annotations

import json

from hubasync.delivery import hec_answers as A
from hubasync.delivery.records import Outgoing


def answer(status: int, body: object, events: int = 10, headers: object = None) -> A.Answer:
    return A.event_answer(status, dict(headers or {}), json.dumps(body).encode(), events)


def test_success_with_an_ack_id() -> None:
    found = answer(200, {"text": "Success", "code": 0, "ackId": 7})
    assert found.kind == A.ACCEPTED and found.ack_id == 7


def test_acknowledgement_off_is_a_configuration_error() -> None:
    assert answer(200, {"text": "Success", "code": 0}).kind == A.CONFIGURATION
    assert answer(400, {"text": "ACK is disabled", "code": 14}).kind == A.CONFIGURATION
    assert answer(400, {"text": "Data channel is missing", "code": 10}).kind == A.CONFIGURATION
    assert "useACK" in answer(200, {"text": "Success", "code": 0}).text


def test_tokens_refused_are_configuration_errors() -> None:
    for status, code, text in ((403, 1, "Token disabled"), (401, 2, "Token is required"),
                               (401, 3, "Invalid authorization"), (403, 4, "Invalid token"),
                               (400, 7, "Incorrect index")):
        found = answer(status, {"text": text, "code": code})
        assert found.kind == A.CONFIGURATION and text in found.text


def test_an_invalid_event_is_named_by_its_number() -> None:
    for code, text in ((6, "Invalid data format"), (12, "Event field is required"),
                       (13, "Event field cannot be blank"),
                       (15, "Error in handling indexed fields")):
        found = answer(400, {"text": text, "code": code, "invalid-event-number": 3})
        assert found.kind == A.REJECT_EVENT and found.event_number == 3
    assert answer(400, {"text": "Invalid data format", "code": 6,
                        "invalid-event-number": 10}).kind == A.FAILED


def test_busy_is_transient_with_retry_after() -> None:
    found = answer(503, {"text": "Server is busy", "code": 9}, headers={"Retry-After": "3"})
    assert found.kind == A.TRANSIENT and found.retry_after == 3.0
    assert answer(500, {"text": "Internal server error", "code": 8}).kind == A.TRANSIENT
    assert answer(502, "<html>bad gateway</html>").kind == A.TRANSIENT
    assert answer(503, {}, headers={"Retry-After": "soon"}).retry_after is None


def test_too_large_and_others() -> None:
    assert answer(413, {"text": "Content-Length of 5 too large"}).kind == A.TOO_LARGE
    assert answer(400, {"text": "No data", "code": 5}).kind == A.FAILED
    assert answer(404, {"text": "not found"}).kind == A.FAILED
    garbage = A.event_answer(500, {}, b"\xff\x00 not json", 1)
    assert garbage.kind == A.TRANSIENT and "\x00" not in garbage.text


def test_ack_answers() -> None:
    found, acks = A.ack_answer(200, {}, b'{"acks": {"0": true, "1": false, "x": true}}')
    assert found.kind == A.ACCEPTED and acks == {0: True, 1: False}
    found, acks = A.ack_answer(400, {}, b'{"text": "ACK is disabled", "code": 14}')
    assert found.kind == A.CONFIGURATION and acks == {}
    assert A.ack_answer(200, {}, b"[]")[0].kind == A.FAILED
    assert A.ack_answer(503, {}, b'{"text": "Server is busy", "code": 9}')[0].kind == A.TRANSIENT


def test_records_carry_the_event_bytes_and_the_key() -> None:
    meta = A.metadata("hubasync:event", None, "threat")
    [record] = A.event_records([Outgoing(1, 'k"1', b'{"a":[1,2]}')], "hubasync_key", meta)
    assert json.loads(record) == {"event": {"a": [1, 2]}, "fields": {"hubasync_key": 'k"1'},
                                  "sourcetype": "hubasync:event", "index": "threat"}


def test_requests_stay_within_the_byte_limit() -> None:
    sizes = [400, 400, 400, 1500, 10]
    assert A.requests(sizes, range(5), 1000) == [[0, 1], [2], [3], [4]]
    assert A.requests(sizes, [4, 0], 1000) == [[4, 0]]
