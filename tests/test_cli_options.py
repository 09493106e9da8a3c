"""Options as the command line checks them, before any request: what reaches the run's settings,
and the combinations refused (exit 2, one line naming the option)."""

from __future__ import annotations

from typing import Any, List

import pytest

from hubasync.cli.main import build_parser, settings_from
from hubasync.core.params import relative_time
from hubasync.errors import UsageError

URL = "https://hub.example.com/shares/v2/async/abc"


def settings(*args: str) -> Any:
    return settings_from([URL, "--apikey", "k", *args])


def refused(*args: str) -> str:
    with pytest.raises(UsageError) as caught:
        settings(*args)
    assert caught.value.exit_code == 2
    return str(caught.value)


@pytest.mark.parametrize(("text", "sent"), [
    ("-24h", "-86400"), ("24h", "-86400"), ("+24h", "-86400"), ("-7d", "-604800"),
    ("30m", "-1800"), ("-30m", "-1800"), ("90s", "-90"), ("1.5m", "-90"), ("0.5s", "-0.5"),
    (" 2 hours ", "-7200"), ("0d", "0"),
    # a plain number keeps its meaning: epoch seconds, or <= 0 for seconds before now
    ("-86400", "-86400"), ("0", "0"), ("1600000000", "1600000000"), ("1.5", "1.5"),
    # dates and anything else go to the hub as they are
    ("2020-10-01", "2020-10-01"), ("2020-10-01T12:00:00Z", "2020-10-01T12:00:00Z"),
    ("2020-10-01 12:00", "2020-10-01 12:00"), ("yesterday", "yesterday"), ("", ""),
])
def test_relative_time(text: str, sent: str) -> None:
    assert relative_time(text) == sent


@pytest.mark.parametrize("args", [
    ["--start", "-24h", "--end", "-1h"], ["--start=-24h", "--end=1h"], ["-s", "-24h", "-e", "1h"],
    ["-s-24h", "-e-1h"], ["-s", "-1d", "-e", "-3600"],
])
def test_start_and_end_take_durations_before_now(args: List[str]) -> None:
    assert settings(*args).query.pairs() == [("start", "-86400"), ("end", "-3600")]


def test_other_start_and_end_values_are_sent_as_given() -> None:
    assert settings("-s", "2020-10-01", "-e", "-60").query.pairs() == [
        ("start", "2020-10-01"), ("end", "-60")]
    assert settings("--start", "-.5").query.pairs() == [("start", "-.5")]
    # a value that is an option stays one: --start still wants its value
    assert "--start" in refused("--start", "--reverse")


def test_dash_output_is_stdout() -> None:
    assert settings("-o", "-").output is None
    assert settings("-o", "./-").output == "./-"  # a file named "-" is still reachable
    assert "-o FILE" in refused("-o", "-", "--state", "s.state")


def test_append_and_overwrite_reach_the_settings() -> None:
    assert settings("-o", "out.json").existing == "refuse"
    assert settings("-o", "out.json", "--overwrite").existing == "overwrite"
    assert settings("-o", "out.jsonl", "--format", "jsonl", "--append").existing == "append"
    assert settings("-o", "out.csv", "--format", "csv", "--overwrite").existing == "overwrite"


@pytest.mark.parametrize(("args", "words"), [
    (["--append", "--overwrite", "-o", "x", "--format", "jsonl"], "not allowed with"),
    (["--append", "--format", "jsonl"], "-o FILE"),
    (["--append", "--format", "jsonl", "-o", "-"], "-o FILE"),
    (["--overwrite"], "-o FILE"),
    (["--append", "-o", "x.json"], "--format jsonl"),
    (["--append", "-o", "x.csv", "--format", "csv"], "--format jsonl"),
])
def test_append_and_overwrite_combinations_are_checked(args: List[str], words: str) -> None:
    assert words in refused(*args)


def test_a_count_url_takes_no_append_nor_total() -> None:
    with pytest.raises(UsageError, match="--append"):
        settings_from([URL + "/count", "-k", "k", "-o", "c.jsonl", "--format=jsonl",
                       "--append"])
    with pytest.raises(UsageError, match="--total"):
        settings_from([URL + "/count", "-k", "k", "--total"])


def test_total_reaches_the_settings_and_is_checked() -> None:
    assert settings().progress_total is False
    assert settings("--total").progress_total is True
    assert settings("--total", "--progress").progress_total is True
    assert "--quiet" in refused("--total", "--quiet")
    assert "--no-progress" in refused("--total", "--no-progress")
    assert "--follow" in refused("--total", "--follow")


def test_progress_stays_a_flag_before_the_url() -> None:
    parsed = settings_from(["--progress", URL, "-k", "k"])
    assert parsed.progress is True and parsed.share.display().startswith("https://")


@pytest.mark.parametrize("abbreviation", ["--tot", "--app", "--over", "--prog"])
def test_new_options_are_matched_whole(abbreviation: str) -> None:
    assert "unrecognized" in refused(abbreviation)


def test_help_tells_the_new_forms() -> None:
    text = " ".join(build_parser().format_help().split())
    for words in ("- is stdout", "--append", "--overwrite", "--total", "24h, -24h, 7d, 30m"):
        assert words in text, words
    assert "seed" not in text.lower()
