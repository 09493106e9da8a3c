"""The splitter and backslashes before a quote: an escaped backslash does not escape the quote.

In ``"x\\\\"`` (JSON text) the string ends after the two backslashes. The fast path blanks
escapes before it looks for strings (``_mask_escapes`` in ``events/splitter.py``); taking that
quote for an escaped one would join two events, or refuse a valid body. Every way an event
can go through the splitter is tried: the fast path, strict mode, the exact scanner, any cut
into chunks, and the events cut out of a batch (``feed``) or written one a line (``lines``).
"""

from __future__ import annotations

import json
from typing import List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubasync.errors import BadBody
from hubasync.events.splitter import Batch, EventSplitter

# Two events: the first one's string ends after "x\\", the second one's string holds "},{".
BODY = b'[{"a":"x\\\\"},{"b":"},{"}]'
EVENTS = [b'{"a":"x\\\\"}', b'{"b":"},{"}']
# The same, with a nested object in the second event: it goes through the exact scanner.
NESTED_BODY = b'[{"a":"x\\\\"},{"b":"},{","n":{"m":"\\\\"}}]'
NESTED_EVENTS = [b'{"a":"x\\\\"}', b'{"b":"},{","n":{"m":"\\\\"}}']


def batches(body: bytes, cuts: Sequence[int], strict: bool) -> List[Batch]:
    """Feed ``body`` cut at the positions ``cuts`` (increasing), then finish."""
    splitter = EventSplitter(strict=strict)
    bounds = [0, *cuts, len(body)]
    fed = [splitter.feed_batch(body[start:end]) for start, end in zip(bounds, bounds[1:])]
    splitter.finish()
    return fed


def events_of(fed: List[Batch]) -> List[bytes]:
    return [event for batch in fed for event in batch.events()]


def lines_of(fed: List[Batch]) -> bytes:
    return b"\n".join(batch.lines() for batch in fed if batch)


def test_the_bodies_are_what_the_tests_say() -> None:
    assert json.loads(BODY) == [{"a": "x\\"}, {"b": "},{"}]
    assert [json.loads(event) for event in EVENTS] == json.loads(BODY)
    assert [json.loads(event) for event in NESTED_EVENTS] == json.loads(NESTED_BODY)


@pytest.mark.parametrize("strict", [False, True], ids=["fast", "strict"])
@pytest.mark.parametrize("body, expected", [(BODY, EVENTS), (NESTED_BODY, NESTED_EVENTS)],
                         ids=["flat", "nested"])
def test_an_escaped_backslash_ends_the_string_whole_body(
        body: bytes, expected: List[bytes], strict: bool) -> None:
    fed = batches(body, [], strict)
    assert sum(batch.count for batch in fed) == 2
    assert events_of(fed) == expected
    assert lines_of(fed) == b"\n".join(expected)


@pytest.mark.parametrize("strict", [False, True], ids=["fast", "strict"])
@pytest.mark.parametrize("body, expected", [(BODY, EVENTS), (NESTED_BODY, NESTED_EVENTS)],
                         ids=["flat", "nested"])
def test_an_escaped_backslash_ends_the_string_cut_anywhere(
        body: bytes, expected: List[bytes], strict: bool) -> None:
    for first in range(1, len(body)):
        for cuts in [[first], *([first, second] for second in range(first + 1, len(body)))]:
            fed = batches(body, cuts, strict)
            assert events_of(fed) == expected, cuts
            assert lines_of(fed) == b"\n".join(expected), cuts
    byte_by_byte = batches(body, range(1, len(body)), strict)
    assert events_of(byte_by_byte) == expected


@pytest.mark.parametrize("backslashes, expected", [
    (1, None),  # "x\"},{" is one string: the array is cut short
    (2, EVENTS[0]),
    (3, None),
    (4, b'{"a":"x\\\\\\\\"}'),
])
def test_only_an_odd_run_of_backslashes_escapes_the_quote(
        backslashes: int, expected: object) -> None:
    body = b'[{"a":"x' + b"\\" * backslashes + b'"},{"b":"},{"}]'
    if expected is None:
        with pytest.raises(ValueError):
            json.loads(body)
        for strict in (False, True):
            with pytest.raises(BadBody):
                batches(body, [], strict)
        return
    for strict in (False, True):
        assert events_of(batches(body, [], strict)) == [expected, EVENTS[1]]


# Strings made of what confuses a scanner: backslashes, quotes, braces, brackets, commas.
TRICKY_TEXT = st.text(alphabet=st.sampled_from(['\\', '"', "}", "{", ",", "[", "]", "x"]),
                      max_size=8)
FLAT_EVENT = st.dictionaries(TRICKY_TEXT, st.one_of(TRICKY_TEXT, st.lists(TRICKY_TEXT,
                                                                           max_size=3)),
                             min_size=1, max_size=3)
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": ")])


@settings(max_examples=300, deadline=None)
@given(st.lists(FLAT_EVENT, min_size=1, max_size=6), SEPARATORS, st.booleans(), st.data())
def test_property_tricky_strings_split_exactly_however_cut(
        events: list, separators: tuple, strict: bool, data: st.DataObject) -> None:
    texts = [json.dumps(event, separators=separators).encode() for event in events]
    body = b"[" + separators[0].encode().join(texts) + b"]"
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(body) - 1), max_size=4))))
    fed = batches(body, cuts, strict)
    assert events_of(fed) == texts
    assert [json.loads(line) for line in lines_of(fed).split(b"\n")] == events
