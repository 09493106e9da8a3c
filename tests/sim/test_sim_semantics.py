"""Query semantics over sockets: paging, tokens, sort, reverse, time ranges, filter, projection."""

from __future__ import annotations

import calendar
import time

from processes import wait_until

API = "/shares/v2/async/demo"


def _epoch(event):
    return calendar.timegm(time.strptime(event["observation time"], "%Y-%m-%d %H:%M:%SZ"))


def _time_order(events):
    return sorted(events, key=_epoch)  # stable: ties keep insertion order


def test_default_order_is_time_and_pages_cover_every_event_once(hub):
    events, pages = hub.fetch_all(API)
    assert [len(p.json()) for p in pages] == [1000, 1000, 500]
    assert events == _time_order(hub.sim.share_events())
    assert events != hub.sim.share_events()  # insertion order differs from time order
    assert all(p.header("X-Last-Inserted-Token") for p in pages)
    assert all(p.header("X-First-Token") and p.header("X-Last-Token") for p in pages)
    assert pages[-1].header("X-Next-Token") is None


def test_sort_id_is_insertion_order_and_reverse_newest_first(hub):
    by_id, _ = hub.fetch_all(API, [("sort", "_id"), ("limit", "700")])
    assert by_id == hub.sim.share_events()
    newest, _ = hub.fetch_all(API, [("reverse", ""), ("limit", "900")])
    assert newest == _time_order(hub.sim.share_events())[::-1]
    id_rev, _ = hub.fetch_all(API, [("sort", "_id"), ("reverse", "true")])
    assert id_rev == hub.sim.share_events()[::-1]


def test_limit_capped_by_page_max_and_validated(hub):
    assert len(hub.run(API, [("limit", "100000")]).json()) == 1000
    assert len(hub.run(API, [("limit", "7")]).json()) == 7
    for bad in ("0", "100001", "-1", "ten", "1.5"):
        assert hub.post(API, [("limit", bad)]).status == 400, bad


def test_token_is_a_stable_position_posting_again_gives_the_same_page(hub):
    first = hub.run(API, [("limit", "300")])
    token = first.header("X-Next-Token")
    one = hub.run(API, [("limit", "300"), ("token", token)])
    two = hub.run(API, [("limit", "300"), ("token", token)])
    assert one.json() == two.json()
    assert one.json() == _time_order(hub.sim.share_events())[300:600]
    # a position, not an offset: a smaller limit continues from the same place
    small = hub.run(API, [("limit", "5"), ("token", token)])
    assert small.json() == one.json()[:5]
    # X-Last-Token of a page is the same position as its X-Next-Token
    last = hub.run(API, [("limit", "300"), ("token", first.header("X-Last-Token"))])
    assert last.json() == one.json()


def test_token_of_a_sort_or_direction_does_not_fit_another(hub):
    token = hub.run(API, [("limit", "10")]).header("X-Next-Token")
    for params in ([("sort", "_id")], [("reverse", "")]):
        resp = hub.run(API, params + [("token", token)])
        assert resp.status == 400
        assert resp.json()["errors"][0]["key"] == "token"


def test_last_inserted_token_continues_a_synchronisation(hub):
    sim = hub.sim
    events, pages = hub.fetch_all(API, [("sort", "_id"), ("start", "1")])
    assert events == sim.share_events()
    mark = pages[-1].header("X-Last-Inserted-Token")
    nothing = hub.run(API, [("sort", "_id"), ("token", mark)])
    assert nothing.json() == []
    assert nothing.header("X-Next-Token") is None
    assert nothing.header("X-Last-Inserted-Token") == mark
    sim.append_events("demo", 7)
    new = hub.run(API, [("sort", "_id"), ("token", mark)])
    assert new.json() == sim.share_events()[-7:]
    assert new.header("X-Last-Inserted-Token") != mark


def test_time_sorted_tokens_survive_new_events(hub):
    first = hub.run(API, [("limit", "1000")])
    token = first.header("X-Next-Token")
    hub.sim.append_events("demo", 20)  # newest: they sort last
    rest, _ = hub.fetch_all(API, [("token", token)])
    assert first.json() + rest == _time_order(hub.sim.share_events())


def test_start_end_every_form(hub):
    events = hub.sim.share_events()
    times = sorted(_epoch(e) for e in events)
    mid = times[len(times) // 2]
    day = time.strftime("%Y-%m-%d", time.gmtime(mid))
    day_start = calendar.timegm(time.strptime(day, "%Y-%m-%d"))

    def got(params):
        return hub.run(API + "/count", params).json()["count"]

    def want(lo, hi=None):
        return sum(1 for t in times if t >= lo and (hi is None or t < hi))

    assert got([("start", str(mid))]) == want(mid)
    assert got([("start", f"{mid}.0")]) == want(mid)
    assert got([("start", str(mid)), ("end", str(mid + 3600))]) == want(mid, mid + 3600)
    assert got([("start", day)]) == want(day_start)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mid))
    assert got([("start", iso)]) == want(mid)
    spaced = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(mid))
    assert got([("start", spaced)]) == want(mid)
    offset = time.strftime("%Y-%m-%dT%H:%M:%S+02:00", time.gmtime(mid + 7200))
    assert got([("start", offset)]) == want(mid)
    now = time.time()
    assert got([("start", "-86400")]) == want(int(now) - 86400) or (
        got([("start", "-86400")]) == want(int(now) - 86401))
    assert got([("start", "0")]) == 0
    assert got([("end", "0")]) == 2500
    for bad in ("2020-13-01", "yesterday", "2020-02-31", "nan"):
        assert hub.post(API, [("start", bad)]).status == 400, bad


def test_filter_subset(hub):
    events = hub.sim.share_events()

    def run(expr):
        found, _ = hub.fetch_all(API, [("filter", expr), ("sort", "_id")])
        return found

    assert run("severity=high") == [e for e in events if e["severity"] == "high"]
    assert run('"as name"="Elisa Oyj"') == [e for e in events if e["as name"] == "Elisa Oyj"]
    assert run('type="open service" AND severity!=low') == [
        e for e in events if e["type"] == "open service" and e["severity"] != "low"]
    assert run("cc=FI or cc=SE") == [e for e in events if e["cc"] in ("FI", "SE")]
    assert run("not (category='potential threats')") == [
        e for e in events if e["category"] != "potential threats"]
    assert run("cve=*") == [e for e in events if "cve" in e]
    listed = next(e for e in events if isinstance(e.get("domain name"), list))
    name = listed["domain name"][1]
    assert listed in run(f'"domain name"="{name}"')
    ru = "ПАО «Ростелеком»"
    assert run(f'"as name"="{ru}"') == [e for e in events if e["as name"] == ru]
    count = hub.run(API + "/count", [("filter", "severity=high"), ("start", "1")]).json()
    assert count == {"count": sum(1 for e in events if e["severity"] == "high")}
    for bad in ("severity=", "(a=b", "a b", "=x", "a=b AND"):
        resp = hub.post(API, [("filter", bad)])
        assert resp.status == 400 and resp.json()["errors"][0]["key"] == "filter", bad


def test_filtered_pages_continue_with_tokens(hub):
    found, pages = hub.fetch_all(API, [("filter", "severity=high"), ("limit", "300")])
    assert len(pages) > 2
    assert found == [e for e in _time_order(hub.sim.share_events()) if e["severity"] == "high"]


def test_projection_repeated_parameter(hub):
    resp = hub.run(API, [("projection", "feed"), ("projection", "observation time"),
                         ("limit", "50")])
    assert resp.json() == [
        {"observation time": e["observation time"], "feed": e["feed"]}
        for e in _time_order(hub.sim.share_events())[:50]
    ]


def test_notification_share_takes_only_limit_and_token(hub):
    events, pages = hub.fetch_all("/shares/v2/async/notify/1", [("limit", "400")])
    assert events == hub.sim.share_events("notify/1")
    assert len(pages) == 4
    resp = hub.post("/shares/v2/async/notify/0", [("start", "1"), ("filter", "a=b")])
    assert resp.status == 400
    assert [e["message"] for e in resp.json()["errors"]] == [
        "Unknown parameter: start", "Unknown parameter: filter"]


def test_repeated_single_parameters_are_invalid(hub):
    resp = hub.post(API, [("limit", "1"), ("limit", "2")])
    assert resp.status == 400
    assert resp.json()["errors"][0]["message"] == "Invalid limit: ['1', '2']"


def test_grow_appends_events_every_second(make_sim, hub_for):
    started = time.monotonic()
    sim = make_sim(events=100, grow=40)
    size = wait_until(lambda: len(sim.share_events()) >= 120 and len(sim.share_events()),
                      "the share to grow by 20 events")
    elapsed = time.monotonic() - started
    assert elapsed >= 0.5 - 0.1  # not faster than 40 a second (one 0.1 s tick early at most)
    assert size <= 100 + 40 * elapsed + 1  # nor faster, however slow the machine
    events, _ = hub_for(sim).fetch_all(API, [("sort", "_id")])
    assert len(events) >= size and events[:100] == sim.share_events()[:100]


def test_data_file_is_served(make_sim, hub_for, tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [
        '{"observation time": "2024-01-02 03:04:05Z", "feed": "b", "n": "1"}',
        '{"observation time": "2024-01-01 00:00:00Z", "feed": "a", "n": "2"}',
        '{"observation time": "2024-01-03 00:00:00Z", "feed": "c", "n": "3", "ip": ["1.2.3.4"]}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sim = make_sim(data=str(path))
    hub = hub_for(sim)
    assert [e["n"] for e in hub.run(API).json()] == ["2", "1", "3"]
    assert hub.run(API, [("start", "2024-01-02")]).json()[0]["n"] == "1"
    assert hub.run(API, [("filter", "ip=1.2.3.4")]).json()[0]["n"] == "3"
    assert [e["n"] for e in hub.run("/shares/v2/async/notify/0").json()] == ["1", "3"]
