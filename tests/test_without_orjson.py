"""The tests of the formats and of ``--strict`` again, with orjson turned off.

With the ``fast`` extra installed, CSV and ``--strict`` parse with orjson first; these are the
same tests run on the standard library's path alone (without orjson installed, both files test
that path and this one only repeats them).
"""

from __future__ import annotations

import pytest
from test_formats import (  # noqa: F401 - collected here a second time
    test_csv_columns_come_from_the_first_batch_and_the_rest_goes_to_extra,
    test_csv_extra_column_is_renamed_when_an_event_has_that_key,
    test_csv_lone_surrogate_does_not_break_the_output,
    test_csv_never_holds_a_raw_nul_byte,
    test_csv_projection_header_without_events_has_no_nul,
    test_csv_rollback_of_the_first_page_forgets_its_columns,
    test_csv_with_projection,
    test_csv_without_events_is_empty_or_just_the_projection_header,
    test_pages_parse_back_to_the_events,
    test_random_page_sequences_keep_exactly_the_committed_events,
)
from test_stream import (  # noqa: F401 - collected here a second time
    test_malformed_bodies,
    test_property_any_strict_prefix_fails,
    test_strict_catches_what_the_fast_path_does_not,
    test_valid_bodies,
)

from hubasync.events import parsing


@pytest.fixture(autouse=True)
def without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parsing, "FAST", False)
