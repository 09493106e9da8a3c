"""Tests of hubasync.params: query parameters, their order, their checks and their encoding."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from processes import refused_port

from hubasync.core.params import (
    MAX_PAGE_LIMIT,
    Query,
    encode_query,
    parse_param,
    parse_projection,
    reserved_param,
)
from hubasync.core.urls import ShareUrl, parse_share_url
from hubasync.errors import UsageError

API_SHARE = parse_share_url("https://hub.example.com/shares/v2/async/abc")
NOTIFICATION_SHARE = parse_share_url("https://hub.example.com/shares/v2/async/abc/0")
NOTIFICATION_COUNT = parse_share_url("https://hub.example.com/shares/v2/async/abc/0/count")

FULL = Query(
    start="2020-10-01",
    end="2020-10-07",
    filter='"network owner"="Example Co"',
    projection=("feed", "observation time"),
    sort="_id",
    reverse=True,
    extra=(("x", "1"), ("start", "again")),
)


@pytest.mark.parametrize(
    ("query", "limit", "token", "pairs"),
    [
        (Query(), None, None, []),
        (Query(), 100, None, [("limit", "100")]),
        (Query(), None, "T1", [("token", "T1")]),
        (Query(reverse=True), 100, None, [("reverse", ""), ("limit", "100")]),
        (Query(start="2020-10-01", end="2020-10-07"), None, None,
         [("start", "2020-10-01"), ("end", "2020-10-07")]),
        (Query(start="0"), None, None, [("start", "0")]),
        (Query(start="", sort=""), None, None, [("start", ""), ("sort", "")]),
        (Query(projection=("feed", "observation time")), 10000, "tok", [
            ("projection", "feed"), ("projection", "observation time"), ("limit", "10000"),
            ("token", "tok"),
        ]),
        (FULL, MAX_PAGE_LIMIT, "T", [
            ("start", "2020-10-01"),
            ("end", "2020-10-07"),
            ("filter", '"network owner"="Example Co"'),
            ("projection", "feed"),
            ("projection", "observation time"),
            ("sort", "_id"),
            ("reverse", ""),
            ("limit", "100000"),
            ("token", "T"),
            ("x", "1"),
            ("start", "again"),
        ]),
        (Query(extra=(("a", "b"),)), None, None, [("a", "b")]),
    ],
)
def test_pairs(
    query: Query, limit: int | None, token: str | None, pairs: list[tuple[str, str]]
) -> None:
    assert query.pairs(limit=limit, token=token) == pairs


def test_seed_examples_encode_as_the_seed_sends_them() -> None:
    query = Query(projection=parse_projection("feed,observation time"))
    assert encode_query(query.pairs(limit=10000, token="<token>")) == (
        "projection=feed&projection=observation%20time&limit=10000&token=%3Ctoken%3E"
    )
    assert encode_query(Query(reverse=True).pairs(limit=100)) == "reverse=&limit=100"
    assert encode_query(Query(start="2020-10-01", end="2020-10-07").pairs()) == (
        "start=2020-10-01&end=2020-10-07"
    )


@pytest.mark.parametrize("share", [API_SHARE, API_SHARE.with_count(True)])
def test_api_shares_take_every_parameter(share: ShareUrl) -> None:
    FULL.check_for(share)


@pytest.mark.parametrize(
    "query",
    [Query(), Query(extra=(("start", "2020-01-01"), ("anything", "goes")))],
)
@pytest.mark.parametrize("share", [NOTIFICATION_SHARE, NOTIFICATION_COUNT])
def test_notification_shares_take_limit_token_and_extra(query: Query, share: ShareUrl) -> None:
    query.check_for(share)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (Query(start="2020-10-01"), ["--start"]),
        (Query(end="0"), ["--end"]),
        (Query(filter="severity=high"), ["--filter"]),
        (Query(projection=("feed",)), ["--projection"]),
        (Query(sort="_id"), ["--sort"]),
        (Query(reverse=True), ["--reverse"]),
        (Query(start="", end=""), ["--start", "--end"]),
        (FULL, ["--start", "--end", "--filter", "--projection", "--sort", "--reverse"]),
    ],
)
def test_notification_shares_refuse_the_rest(query: Query, named: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        query.check_for(NOTIFICATION_SHARE)
    message = str(caught.value)
    assert "notification share" in message
    assert "--limit and --token" in message
    assert message.endswith("drop " + ", ".join(named))


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("feed", ("feed",)),
        ("feed,observation time", ("feed", "observation time")),
        (" feed , observation time ,", ("feed", "observation time")),
        (",,feed,,", ("feed",)),
        ("a,a", ("a", "a")),
        ("source time", ("source time",)),
    ],
)
def test_parse_projection(text: str, keys: tuple[str, ...]) -> None:
    assert parse_projection(text) == keys


@pytest.mark.parametrize("text", ["", " ", ",", " , ,, "])
def test_parse_projection_refuses_no_keys(text: str) -> None:
    with pytest.raises(UsageError, match="--projection names no keys"):
        parse_projection(text)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("KEY=VALUE", ("KEY", "VALUE")),
        ("filter=a=b", ("filter", "a=b")),
        ("observation time=x y", ("observation time", "x y")),
        ("sorted=1", ("sorted", "1")),
        ("tokens=1", ("tokens", "1")),
        ("apikeys=1", ("apikeys", "1")),
    ],
)
def test_parse_param(text: str, pair: tuple[str, str]) -> None:
    assert parse_param(text) == pair


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("KEY", "has no '='"),
        ("", "has no '='"),
        ("=VALUE", "the key is empty"),
        (" =VALUE", "the key is empty"),
        ("apikey=SECRET", "Authorization header"),
        ("APIKEY=SECRET", "Authorization header"),
        (" apikey =SECRET", "Authorization header"),
        ("apikey", "Authorization header"),
        ("ApiKey=SECRET", "Authorization header"),
        ("\u0041PIKEY=SECRET", "Authorization header"),
        ("reverse=", "give --reverse"),
        ("REVERSE=", "give --reverse"),
        ("sort=SECRET", "give --sort"),
        ("Sort=SECRET", "give --sort"),
        ("\u017fort=SECRET", "give --sort"),  # a long s folds to s
        ("LIMIT=SECRET", "give --limit"),
        (" Token =SECRET", "give --token"),
    ],
)
def test_parse_param_refuses(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_param(text)
    assert reason in str(caught.value)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("pairs", "text"),
    [
        ([], ""),
        ([("reverse", "")], "reverse="),
        ([("filter", '"network owner"="Example Co"')],
         "filter=%22network%20owner%22%3D%22Example%20Co%22"),
        ([("projection", "a/b"), ("x", "&=?#+")], "projection=a%2Fb&x=%26%3D%3F%23%2B"),
        ([("start", "-3600")], "start=-3600"),
        ([("k", "\u00e4")], "k=%C3%A4"),
    ],
)
def test_encode_query(pairs: list[tuple[str, str]], text: str) -> None:
    assert encode_query(pairs) == text


@given(st.lists(st.tuples(st.text(st.characters(codec="utf-8")),
                          st.text(st.characters(codec="utf-8")))))
def test_encode_query_round_trips(pairs: list[tuple[str, str]]) -> None:
    text = encode_query(pairs)
    assert " " not in text and "+" not in text
    assert parse_qsl(text, keep_blank_values=True) == pairs


RESERVED_SPELLINGS = ["apikey", "APIKEY", "ApiKey", " apikey ", "sort", "SORT", "\u017fort",
                      "reverse", "Reverse", "limit", "LIMIT", "token", "Token"]


@pytest.mark.parametrize("key", RESERVED_SPELLINGS)
def test_the_library_refuses_reserved_params_whatever_their_case(key: str) -> None:
    from hubasync import Client
    from hubasync.errors import InvalidArgument

    with refused_port() as port:  # refused before any request: nothing listens there anyway
        client = Client(f"http://127.0.0.1:{port}/shares/v2/async/x", apikey="k", retries=0)
        for call in (lambda: list(client.events(params={key: "SECRET"})),
                     lambda: client.count(params={key: "SECRET"})):
            with pytest.raises(InvalidArgument, match="is refused") as caught:
                call()
            assert "SECRET" not in str(caught.value)


def test_reserved_param_names_the_parameter() -> None:
    assert [reserved_param(key) for key in ("APIKEY", " Sort ", "sorted", "apikeys", "")] == [
        "apikey", "sort", None, None, None]
