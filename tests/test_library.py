"""The library (``hubasync.Client``) against the simulator over real sockets.

What the README promises of it: ``count()``, ``events()`` and ``pages()`` give the truth
(every event exactly once, in the order asked for, with every query parameter), faults are
survived without duplicates, failures raise :mod:`hubasync.errors` classes with their
``exit_code``, the key is never shown, and a page is spooled, not held in memory.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import time
import traceback
import tracemalloc
from typing import Any, Dict, Iterator, List

import pytest
from fakehub import SHARE, FakeHub, reply, tiny_share
from processes import refused_port

import hubasync
from hubasync import (
    AuthError,
    HubasyncError,
    HubUnavailable,
    NotFoundError,
    QueryRejected,
    UsageError,
)

KEY = "K3y-s3cr3t-0042"
Event = Dict[str, Any]


@pytest.fixture
def hub(make_sim: Any) -> Any:
    """The simulator with a distinctive key (2500 events, pages of at most 1000)."""
    return make_sim(apikey=KEY)


def client(sim: Any, share: str = "demo", **options: Any) -> hubasync.Client:
    return hubasync.Client(f"{sim.url}/shares/v2/async/{share}", apikey=KEY, **options)


def rendered(error: BaseException) -> str:
    """Everything an exception can show: str, repr, args and the whole chained traceback."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return "\n".join([str(error), repr(error), repr(error.args), text])


def day(event: Event) -> str:
    return str(event["observation time"])[:10]


# --- count -----------------------------------------------------------------------------------


def test_count_equals_the_truth(hub: Any) -> None:
    truth = hub.share_events("demo")
    assert client(hub).count() == len(truth) == 2500


@pytest.mark.parametrize("rule, holds", [
    ("severity=high", lambda e: e.get("severity") == "high"),
    ('type="open service" AND severity!=low',
     lambda e: e.get("type") == "open service" and e.get("severity") != "low"),
    ("cc=FI OR cc=SE", lambda e: e.get("cc") in ("FI", "SE")),
])
def test_count_with_a_filter_equals_the_truth(hub: Any, rule: str, holds: Any) -> None:
    expected = sum(1 for event in hub.share_events("demo") if holds(event))
    assert 0 < expected < 2500  # the filter really filters
    assert client(hub).count(filter=rule) == expected


def test_count_with_a_time_range_equals_the_truth(hub: Any) -> None:
    truth = hub.share_events("demo")
    days = sorted({day(e) for e in truth})
    start, end = days[len(days) // 4], days[len(days) // 2]
    expected = sum(1 for e in truth if start <= day(e) < end)
    assert 0 < expected < len(truth)
    assert client(hub).count(start=start, end=end) == expected


def test_count_of_a_notification_share(hub: Any) -> None:
    for index in ("0", "1"):
        assert client(hub, f"notify/{index}").count() == len(hub.share_events(f"notify/{index}"))


# --- events ----------------------------------------------------------------------------------


def test_events_in_insertion_order_every_event_exactly_once(hub: Any) -> None:
    events = list(client(hub).events(sort="_id"))
    truth = hub.share_events("demo")
    assert events == truth
    assert len({e["uuid"] for e in events}) == len(truth)


def test_events_by_default_in_time_order(hub: Any) -> None:
    events = list(client(hub).events())
    expected = sorted(hub.share_events("demo"), key=lambda e: e["observation time"])
    assert events == expected  # time order, ties in insertion order (a stable sort)


@pytest.mark.parametrize("limit", [1, 999, 1000, 1001, 1234])
def test_events_with_limit_are_the_first_n(hub: Any, limit: int) -> None:
    # pages hold at most 1000 events: 1001 and 1234 need a second query
    assert list(client(hub).events(sort="_id", limit=limit)) == hub.share_events()[:limit]


@pytest.mark.parametrize("projection, keys", [
    (["feed", "ip"], ("feed", "ip")),
    ("feed,observation time", ("feed", "observation time")),
    (" port , domain name ", ("port", "domain name")),  # keys only some events have
])
def test_events_with_projection(hub: Any, projection: Any, keys: tuple) -> None:
    events = list(client(hub).events(sort="_id", projection=projection))
    truth = hub.share_events("demo")
    assert len(events) == len(truth)
    for got, event in zip(events, truth):
        assert list(got) == [key for key in event if key in keys]  # the event's key order
        assert got == {key: event[key] for key in keys if key in event}
    assert any(events)


def test_events_in_a_time_range(hub: Any) -> None:
    truth = hub.share_events("demo")
    days = sorted({day(e) for e in truth})
    start, end = days[3], days[-3]
    events = list(client(hub).events(sort="_id", start=start, end=end))
    expected = [e for e in truth if start <= day(e) < end]
    assert 0 < len(expected) < len(truth)
    assert events == expected


def test_events_reversed(hub: Any) -> None:
    truth = hub.share_events("demo")
    assert list(client(hub).events(sort="_id", reverse=True)) == truth[::-1]
    assert list(client(hub).events(sort="_id", reverse=True, limit=100)) == truth[::-1][:100]
    newest = sorted(truth, key=lambda e: e["observation time"], reverse=True)[:50]
    got = list(client(hub).events(reverse=True, limit=50))
    assert [e["observation time"] for e in got] == [e["observation time"] for e in newest]


def test_events_with_a_filter(hub: Any) -> None:
    events = list(client(hub).events(sort="_id", filter='"as name"="Hetzner Online GmbH"'))
    expected = [e for e in hub.share_events() if e.get("as name") == "Hetzner Online GmbH"]
    assert expected and events == expected


def test_events_of_a_notification_share(hub: Any) -> None:
    for index in ("0", "1"):
        truth = hub.share_events(f"notify/{index}")
        assert list(client(hub, f"notify/{index}").events()) == truth
        assert list(client(hub, f"notify/{index}").events(limit=7)) == truth[:7]


def test_notification_share_refuses_api_share_parameters_before_any_request(hub: Any) -> None:
    before = hub.stats.snapshot()["requests"]
    with pytest.raises(UsageError) as caught:
        list(client(hub, "notify/0").events(sort="_id"))
    assert caught.value.exit_code == 2
    assert hub.stats.snapshot()["requests"] == before


# --- pages -----------------------------------------------------------------------------------


def test_pages_chain_their_tokens_and_cover_everything(hub: Any) -> None:
    truth = hub.share_events("demo")
    pages = []
    events: List[Event] = []
    for page in client(hub).pages(sort="_id"):
        pages.append((page.token, page.next_token, len(page), page.last_inserted_token))
        events.extend(page)
        page.close()
    assert events == truth
    assert [count for _, _, count, _ in pages] == [1000, 1000, 500]
    assert pages[0][0] is None  # the first page was asked for without a token
    for (_, next_token, _, _), (token, _, _, _) in zip(pages, pages[1:]):
        assert next_token is not None and token == next_token
    assert pages[-1][1] is None  # nothing left after the last page
    assert all(inserted for *_, inserted in pages)


@pytest.mark.parametrize("stop_after", [1, 2])
def test_continuing_with_a_pages_next_token_covers_the_rest(hub: Any, stop_after: int) -> None:
    truth = hub.share_events("demo")
    first: List[Event] = []
    token = None
    for number, page in enumerate(client(hub).pages(sort="_id"), 1):
        first.extend(page)
        token = page.next_token
        if number == stop_after:
            break  # leaving the iteration early is allowed
    assert token is not None and len(first) == 1000 * stop_after
    rest = list(client(hub).events(sort="_id", token=token))
    assert first + rest == truth


def test_pages_with_limit_leave_the_token_of_the_rest(hub: Any) -> None:
    truth = hub.share_events("demo")
    pages = list(client(hub).pages(sort="_id", limit=1500))
    assert [len(page) for page in pages] == [1000, 500]
    taken = [event for page in pages for event in page]
    assert taken == truth[:1500]
    token = pages[-1].next_token
    assert token is not None  # more events are left
    rest = list(client(hub).pages(sort="_id", token=token))
    assert [event for page in rest for event in page] == truth[1500:]
    assert rest[-1].next_token is None


def test_page_events_property_and_iterating_twice(hub: Any) -> None:
    page = next(iter(client(hub).pages(sort="_id", limit=10)))
    assert page.events == list(page) == hub.share_events()[:10]


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault, fired", [
    ("results-reset:2", 2),
    ("results-truncated", 1),
    ("results-bad-gzip", 1),
    ("results-bad-json", 1),
    ("status-expired", 1),
    ("post-503", 1),
    ("keepalive-drop:3", 3),
])
def test_faults_still_give_every_event_exactly_once(make_sim: Any, fault: str,
                                                    fired: int) -> None:
    sim = make_sim(apikey=KEY, faults=[fault])
    events = list(client(sim).events(sort="_id"))
    assert events == sim.share_events("demo")
    assert sim.stats.faults[fault.split(":")[0]] == fired  # the fault really happened


def test_count_survives_faults(make_sim: Any) -> None:
    sim = make_sim(apikey=KEY, faults=["post-429", "results-expired"])
    assert client(sim).count() == 2500
    assert sim.stats.faults["post-429"] == 1 and sim.stats.faults["results-expired"] == 1


# --- errors ----------------------------------------------------------------------------------


def test_wrong_key_raises_auth_error_without_the_key(hub: Any) -> None:
    wrong = "Wr0ng-k3y-7781"
    bad = hubasync.Client(f"{hub.url}/shares/v2/async/demo", apikey=wrong)
    with pytest.raises(AuthError) as caught:
        list(bad.events())
    assert caught.value.exit_code == 3
    assert wrong not in rendered(caught.value)
    with pytest.raises(AuthError) as counted:
        bad.count()
    assert counted.value.exit_code == 3 and wrong not in rendered(counted.value)


@pytest.mark.parametrize("share", ["nosuchshare", "notify/7"])
def test_unknown_share_raises_not_found(hub: Any, share: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        list(client(hub, share).events())
    assert caught.value.exit_code == 4
    assert KEY not in rendered(caught.value)


def test_bad_parameters_raise_query_rejected_with_each_reason(hub: Any) -> None:
    with pytest.raises(QueryRejected) as caught:
        list(client(hub).events(start="foo", params={"startt": "1"}))
    error = caught.value
    assert error.exit_code == 5
    reasons = dict(error.reasons)
    assert set(reasons) == {"start", "startt"}
    assert "foo" in reasons["start"] and "startt" in reasons["startt"]
    assert not error.invalid_token
    assert "start" in str(error) and "startt" in str(error)
    assert KEY not in rendered(error)


def test_bad_filter_on_count_raises_query_rejected(hub: Any) -> None:
    with pytest.raises(QueryRejected) as caught:
        client(hub).count(filter="ip in 10.0.0.0/8")
    assert caught.value.exit_code == 5
    assert [key for key, _ in caught.value.reasons] == ["filter"]


def test_invalid_token_raises_query_rejected_marked_as_a_token_error(hub: Any) -> None:
    with pytest.raises(QueryRejected) as caught:
        list(client(hub).events(token="not-a-token"))
    assert caught.value.exit_code == 5 and caught.value.invalid_token


def test_dead_port_raises_hub_unavailable_after_the_retries() -> None:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}/shares/v2/demo?apikey={KEY}"  # the UI's URL form
        dead_port_raises_hub_unavailable(hubasync.Client(url, retries=1, timeout=2))


def dead_port_raises_hub_unavailable(dead: hubasync.Client) -> None:
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        list(dead.events())
    assert caught.value.exit_code == 6
    assert "2 failed attempts" in str(caught.value) and "refused" in str(caught.value)
    assert time.monotonic() - started < 10
    assert KEY not in rendered(caught.value)
    with pytest.raises(HubUnavailable) as counted:
        dead.count()
    assert counted.value.exit_code == 6 and KEY not in rendered(counted.value)


@pytest.mark.parametrize("url, words", [
    (f"http://hub.invalid/shares/v2/demo?apikey={KEY}", "http"),
    (f"https://hub.invalid/not/a/share?apikey={KEY}", "share URL"),
    (f"https://hub.invalid/shares/v2/async/demo/jobs/1?apikey={KEY}", "job"),
])
def test_usage_errors_are_raised_at_once_without_the_key(url: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        hubasync.Client(url)
    assert caught.value.exit_code == 2
    assert words in str(caught.value)
    assert KEY not in rendered(caught.value)


def test_no_key_is_a_usage_error(monkeypatch: Any) -> None:
    monkeypatch.delenv("APIKEY", raising=False)
    with pytest.raises(UsageError):
        hubasync.Client("https://hub.invalid/shares/v2/async/demo")
    monkeypatch.setenv("APIKEY", KEY)
    assert KEY not in repr(hubasync.Client("https://hub.invalid/shares/v2/async/demo"))


def test_limit_below_one_is_a_usage_error(hub: Any) -> None:
    with pytest.raises(UsageError):
        list(client(hub).events(limit=0))


def client_given(form: str, hub: Any, monkeypatch: Any) -> hubasync.Client:
    """A client whose key came as an argument, in a sync or async URL, or from APIKEY."""
    monkeypatch.delenv("APIKEY", raising=False)
    if form == "argument":
        return client(hub)
    if form == "sync URL":
        return hubasync.Client(hub.share_url("demo", sync=True))
    if form == "async URL":
        return hubasync.Client(f"{hub.url}/shares/v2/async/demo?apikey={KEY}")
    monkeypatch.setenv("APIKEY", KEY)
    return hubasync.Client(f"{hub.url}/shares/v2/async/demo")


@pytest.mark.parametrize("form", ["argument", "sync URL", "async URL", "environment"])
def test_repr_never_shows_the_key(hub: Any, form: str, monkeypatch: Any) -> None:
    made = client_given(form, hub, monkeypatch)
    for shown in (repr(made), str(made), f"{made!r}", repr([made])):
        assert KEY not in shown
        assert "/shares/v2/async/demo" in shown
    assert made.count() == 2500  # the key is still used


# --- memory ----------------------------------------------------------------------------------


@pytest.fixture
def sim_process(tmp_path: Any) -> Iterator[Any]:
    """A simulator in its own process, so tracemalloc sees only the client's memory."""
    processes: List[subprocess.Popen] = []

    def start(*args: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "hubasync.sim", "--port", "0", "--retry-after", "0.05",
             "--apikey", KEY, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line
        return found.group(0)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def traced_first_page(url: str, iterate: bool = True) -> tuple:
    """Fetch (and iterate) the one page of a share under tracemalloc: (page, events, peak)."""
    made = hubasync.Client(f"{url}/shares/v2/async/demo", apikey=KEY)
    tracemalloc.start()
    try:
        pages = made.pages(sort="_id")
        page = next(pages)
        count = sum(1 for _ in page) if iterate else len(page)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return page, count, peak


def json_size(page: Any, sample: int = 2000) -> int:
    """The size of the page's events as JSON, estimated from its first events (untraced)."""
    sizes = [len(json.dumps(event, ensure_ascii=False).encode("utf-8")) + 2
             for event in itertools.islice(page, sample)]
    return len(page) * sum(sizes) // len(sizes)


def test_iterating_a_100000_event_page_does_not_hold_it(sim_process: Any) -> None:
    url = sim_process("--events", "100000")  # page_max is 100,000: one page
    page, count, peak = traced_first_page(url)
    assert count == 100_000 and page.next_token is None
    size = json_size(page)  # ~46 MB
    assert size > 30_000_000
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a page of {size / 1e6:.1f} MB"


def test_iterating_a_compressible_100000_event_page_does_not_hold_it(sim_process: Any,
                                                                       tmp_path: Any) -> None:
    data = os.path.join(str(tmp_path), "events.jsonl")
    with open(data, "w", encoding="utf-8") as handle:
        for number in range(100_000):
            event = {"observation time": "2020-10-01 00:00:00Z", "n": str(number),
                     "description": "Host seen contacting a known C2 server. " * 10}
            handle.write(json.dumps(event) + "\n")
    url = sim_process("--data", data)
    page, count, peak = traced_first_page(url, iterate=False)  # fetching it is enough
    size = os.path.getsize(data)  # ~46 MB of JSON, gzip-compressed ~100x on the wire
    assert count == 100_000 and page.next_token is None
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a page of {size / 1e6:.1f} MB"


# --- bodies the fast event splitter lets through ---------------------------------------------


def test_a_malformed_event_raises_a_hubasync_error() -> None:
    routes = tiny_share(apikey=KEY)
    routes[("GET", f"{SHARE}/results/1")] = reply(200, b'[{"a":"1"},{"a":"2" x},{"a":"3"}]')
    with FakeHub(routes=routes) as fake:
        made = hubasync.Client(fake.url + SHARE, apikey=KEY, retries=1)
        with pytest.raises(HubasyncError):
            list(made.events())


# --- the library under misuse ----------------------------------------------------------------


def every_form_of(made: hubasync.Client) -> str:
    """Everything introspection shows of a client: repr, str, vars, its attributes' reprs."""
    shown = [repr(made), str(made), repr(vars(made)), str(vars(made))]
    shown += [repr(getattr(made, name, None)) for name in dir(made)]
    shown += [repr(vars(value)) for value in vars(made).values() if hasattr(value, "__dict__")]
    return "\n".join(shown)


@pytest.mark.parametrize("form", ["argument", "sync URL", "async URL", "environment"])
def test_introspection_never_shows_the_key(hub: Any, form: str, monkeypatch: Any) -> None:
    import copy
    import dataclasses
    import pickle

    made = client_given(form, hub, monkeypatch)
    assert KEY not in every_form_of(made)
    with pytest.raises(TypeError):
        dataclasses.asdict(made)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        pickle.dumps(made)
    with pytest.raises(TypeError):
        copy.deepcopy(made)
    assert made.bounds.timeout > 0 and made.bounds.retries >= 0  # the settings can still be read
    assert made.count() == 2500  # and the key is still used


BAD_CLIENT_ARGUMENTS = [
    ({"url": b"https://hub.invalid/shares/v2/async/demo"}, TypeError, "url"),
    ({"apikey": 42}, TypeError, "apikey"),
    ({"timeout": "60"}, TypeError, "timeout"),
    ({"timeout": True}, TypeError, "timeout"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": -1.5}, ValueError, "timeout"),
    ({"timeout": float("nan")}, ValueError, "timeout"),
    ({"timeout": float("inf")}, ValueError, "timeout"),
    ({"retries": 2.5}, TypeError, "retries"),
    ({"retries": "3"}, TypeError, "retries"),
    ({"retries": -1}, ValueError, "retries"),
    ({"cacert": 7}, TypeError, "cacert"),
    ({"cacert": "/nonexistent/ca.pem"}, ValueError, "cacert"),
    ({"allow_http": "yes"}, TypeError, "allow_http"),
]


@pytest.mark.parametrize("arguments, kind, name", BAD_CLIENT_ARGUMENTS)
def test_wrong_client_arguments_are_refused_naming_them(arguments: Dict[str, Any], kind: type,
                                                         name: str) -> None:
    given: Dict[str, Any] = {"url": "https://hub.invalid/shares/v2/async/demo", "apikey": KEY}
    given.update(arguments)
    with pytest.raises(kind) as caught:
        hubasync.Client(**given)
    assert name in str(caught.value)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2
    assert KEY not in rendered(caught.value)


def test_a_cacert_that_is_not_pem_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="cacert.*PEM"):
        hubasync.Client("https://hub.invalid/shares/v2/async/demo", apikey=KEY,
                        cacert=str(path))


BAD_QUERY_ARGUMENTS = [
    ({"limit": "10"}, TypeError, "limit"),
    ({"limit": 2.0}, TypeError, "limit"),
    ({"limit": True}, TypeError, "limit"),
    ({"limit": 0}, ValueError, "limit"),
    ({"limit": -3}, ValueError, "limit"),
    ({"token": 123}, TypeError, "token"),
    ({"token": "\udcff\udcfe"}, ValueError, "token"),
    ({"start": ["2020"]}, TypeError, "start"),
    ({"end": object()}, TypeError, "end"),
    ({"filter": 3}, TypeError, "filter"),
    ({"filter": "ip=\udc80"}, ValueError, "filter"),
    ({"projection": 5}, TypeError, "projection"),
    ({"projection": ["feed", 3]}, TypeError, "projection"),
    ({"projection": {"feed": 1}}, TypeError, "projection"),
    ({"sort": 1}, TypeError, "sort"),
    ({"reverse": "yes"}, TypeError, "reverse"),
    ({"params": [("a", "b")]}, TypeError, "params"),
    ({"params": {"a": 1}}, TypeError, "params"),
    ({"params": {"limit": "5"}}, ValueError, "limit"),
    ({"params": {"token": "T"}}, ValueError, "token"),
    ({"params": {"apikey": KEY}}, ValueError, "apikey"),
    ({"params": {"x": "\udcff"}}, ValueError, "params"),
]


@pytest.mark.parametrize("arguments, kind, name", BAD_QUERY_ARGUMENTS)
@pytest.mark.parametrize("method", ["pages", "events"])
def test_wrong_query_arguments_are_refused_when_called(hub: Any, arguments: Dict[str, Any],
                                                       kind: type, name: str,
                                                       method: str) -> None:
    made = client(hub)
    with pytest.raises(kind) as caught:
        getattr(made, method)(**arguments)  # raised by the call itself, before any request
    assert name in str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert KEY not in rendered(caught.value)
    assert hub.stats.requests["post"] == 0  # nothing was sent, once or twice


@pytest.mark.parametrize("arguments, kind, name", [
    args for args in BAD_QUERY_ARGUMENTS
    if next(iter(args[0])) in ("start", "end", "filter", "params")])
def test_wrong_count_arguments_are_refused(hub: Any, arguments: Dict[str, Any], kind: type,
                                           name: str) -> None:
    with pytest.raises(kind) as caught:
        client(hub).count(**arguments)
    assert name in str(caught.value)
    assert hub.stats.requests["post"] == 0


def test_params_are_sent_as_given(make_sim: Any) -> None:
    sim = make_sim(apikey=KEY, events=300)
    made = client(sim)
    with pytest.raises(QueryRejected) as caught:
        list(made.events(params={"severity": "high"}))  # the hub knows no such parameter
    assert [key for key, _ in caught.value.reasons] == ["severity"]
    assert made.count(params={"filter": "feed=phishtank"}) == made.count(
        filter="feed=phishtank")


def test_start_as_epoch_seconds_is_accepted(hub: Any) -> None:
    made = client(hub)
    assert made.count(start=1) == made.count(start="1") == 2500  # since 1970
    assert made.count(end=1.0) == made.count(end="1.0") == 0


def test_two_iterators_over_one_page_are_independent(hub: Any) -> None:
    made = client(hub)
    pages = made.pages(sort="_id", limit=1000)
    page = next(pages)
    expected = hub.share_events("demo")[:1000]
    first = iter(page)
    head = [next(first) for _ in range(3)]
    second = iter(page)
    assert [next(second) for _ in range(5)] == expected[:5]
    assert head == expected[:3]
    assert next(first) == expected[3]  # the first goes on where it was
    assert list(second) == expected[5:]
    assert list(first) == expected[4:]
    assert page.events == expected and len(page) == 1000
    zipped = list(zip(page, page))
    assert [a for a, _ in zipped] == [b for _, b in zipped] == expected
    page.close()
    pages.close()
