"""A page's body as batches, and the signature that tells its events from another page's."""

from __future__ import annotations

from typing import List

import pytest

from hubasync.core.answers import Read
from hubasync.core.stalls import StallDetector
from hubasync.errors import NoProgress
from hubasync.transport.body import PageStream

from .memory_hub import FakeClock, Reply, _Response


def stream(*chunks: bytes) -> PageStream:
    response = _Response("https://hub.test/r", Reply(200, {}, list(chunks)), FakeClock())
    return PageStream(response, None, Read(None, None), clock=FakeClock())


def signature(*chunks: bytes) -> object:
    page = stream(*chunks)
    batches = [batch for batch in page if batch is not None]
    assert len(batches) >= 2  # else the first batch is the last, and nothing is tested
    return page.signature


def test_the_signature_takes_the_first_event_of_the_first_batch_and_the_last_of_the_last(
        ) -> None:
    first = signature(b'[{"a":1},{"b":2},', b'{"c":3},{"d":4},', b'{"z":9}', b"]")
    assert first == (5, b'{"a":1}', b'{"z":9}')


def test_pages_alike_only_in_their_first_or_last_batch_are_not_repeats() -> None:
    pages: List[object] = [
        signature(b'[{"a":1},{"m":5},', b'{"n":6},{"o":7},', b'{"z":9}', b"]"),
        signature(b'[{"a":1},{"m":5},', b'{"n":6},{"o":7},', b'{"y":8}', b"]"),  # last differs
        signature(b'[{"b":2},{"m":5},', b'{"n":6},{"o":7},', b'{"z":9}', b"]"),  # first differs
    ]
    stalls = StallDetector()
    for n, page in enumerate(pages):
        stalls.check(f"T{n}", f"T{n + 1}", 5, page)  # none is taken for a repeat
    with pytest.raises(NoProgress, match="same events"):
        stalls.check("T3", "T4", 5, pages[0])
