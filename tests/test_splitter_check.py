"""The splitter's fast check gives the verdict it always gave, on any bytes.

``_count_flat_events`` decides which runs of events pass as they came and which go through the
exact scanner one by one: that decides where a JSON array's batches are cut, so the check was
made cheaper (one regex for the escapes, strings removed by a split) without changing a single
verdict. ``reference_count`` is the check as it was (escapes blanked by ``bytes.replace``, strings
by a regex); the two must agree on valid events and on anything else, however odd.
"""

from __future__ import annotations

import json
import re
from typing import Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from hubasync.events.splitter import _count_flat_events

_SKELETON_DELETE = bytes(b for b in range(256) if b not in b'{}[]"')
_STRING_IN_SKELETON = re.compile(rb'"[^"]*"')


def _reference_mask(region: bytes) -> bytes:
    if b'\\"' not in region:
        return region
    if b'\\\\"' in region:
        region = region.replace(b"\\\\", b"__")
    return region.replace(b'\\"', b"__")


def reference_count(region: bytes) -> Optional[int]:
    """The fast check before the rewrite, kept as the oracle."""
    skeleton = _reference_mask(region).translate(None, _SKELETON_DELETE)
    if skeleton.count(b'"') == 2 * skeleton.count(b'""'):
        skeleton = skeleton.translate(None, b'"')
    else:
        skeleton = _STRING_IN_SKELETON.sub(b"", skeleton.replace(b'""', b""))
    if b"[" in skeleton:
        lists = skeleton.count(b"[]")
        if skeleton.count(b"[") != lists or skeleton.count(b"]") != lists:
            return None
        skeleton = skeleton.translate(None, b"[]")
    events = len(skeleton) // 2
    if skeleton != b"{}" * events:
        return None
    return events


# Bytes that matter to the check, and a few that do not.
_TRICKY = st.binary(min_size=0, max_size=40).map(
    lambda data: data.translate(bytes.maketrans(bytes(range(256)),
                                                (b'{}[]"\\\\\\a,: \n' * 20)[:256])))


@settings(max_examples=1000)
@given(_TRICKY)
def test_the_check_agrees_with_the_reference_on_any_bytes(inner: bytes) -> None:
    region = b"{" + inner + b"}"
    assert _count_flat_events(region) == reference_count(region)


_TEXT = st.text(alphabet=st.sampled_from(list('ab{}[]",:\\\n\0é\u2028')), max_size=8)
_VALUE = st.recursive(
    st.one_of(_TEXT, st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_TEXT, inner, max_size=3)),
    max_leaves=6)
_EVENT = st.dictionaries(_TEXT, _VALUE, max_size=5)


@settings(max_examples=400)
@given(st.lists(_EVENT, min_size=1, max_size=6), st.sampled_from([",", ", ", ",\n"]),
       st.booleans())
def test_the_check_agrees_with_the_reference_on_events(events: list[dict[str, object]],
                                                       separator: str, ascii_only: bool) -> None:
    region = separator.join(json.dumps(event, ensure_ascii=ascii_only)
                            for event in events).encode()
    expected = reference_count(region)
    assert _count_flat_events(region) == expected
    flat = all(not isinstance(value, dict)
               and not (isinstance(value, list)
                        and any(isinstance(item, (list, dict)) for item in value))
               for event in events for value in event.values())
    assert expected == (len(events) if flat else None)


def test_escapes_before_quotes_and_braces() -> None:
    assert _count_flat_events(rb'{"a":"\\"},{"b":"\\\""}') == 2
    assert _count_flat_events(rb'{"a":"x\"}"},{"b":1}') == 2
    assert _count_flat_events(rb'{"a":"\q\"}') is None  # an escaped closing quote
    assert _count_flat_events(rb'{"a":"b"\{}') is None  # a backslash never hides a brace
    assert _count_flat_events(rb'{"a":"{"},{"b":"}"}') == 2
    assert _count_flat_events(rb'{"a":{"b":1}}') is None
