"""The vendor's public client (arcticsecurity 0.2.2), which no one here wrote, reads every event
of the simulator with its Query and its Sync."""

from __future__ import annotations

import calendar
import time

import pytest

sharing_api = pytest.importorskip("arcticsecurity.sharing_api")


def _time_order(events):
    return sorted(events, key=lambda e: calendar.timegm(
        time.strptime(e["observation time"], "%Y-%m-%d %H:%M:%SZ")))


def test_vendor_query_reads_every_event(make_sim):
    sim = make_sim(events=2500, page_max=1000)
    query = sharing_api.Query(sim.share_url(sync=True), allow_insecure=True)
    events = list(query.query(pagesize=1000, timeout=30))
    assert len(events) == 2500
    assert events == _time_order(sim.share_events())
    assert sim.stats.requests["results"] == 3


def test_vendor_query_with_filter_projection_and_reverse(make_sim):
    sim = make_sim(events=600)
    query = sharing_api.Query(sim.share_url(sync=True), allow_insecure=True)
    events = list(query.query(filter="severity=high", projection=["uuid", "severity"],
                              reverse=True, start=1, pagesize=100, timeout=30))
    want = [{"severity": e["severity"], "uuid": e["uuid"]}
            for e in _time_order(sim.share_events())[::-1] if e["severity"] == "high"]
    assert events == want


def test_vendor_sync_from_start_1_reads_every_event_then_follows(make_sim):
    sim = make_sim(events=2500, page_max=1000)
    sync = sharing_api.Sync(sim.share_url(sync=True), start=1, allow_insecure=True)
    events = []
    token = None
    while True:
        batch = sync.read(token=token, pagesize=1000, timeout=30)
        events.extend(batch.events)
        token = batch.token
        if not batch.has_more:
            break
    assert events == sim.share_events()
    sim.append_events("demo", 3)
    batch = sync.read(token=token, pagesize=1000, timeout=30)
    assert batch.events == sim.share_events()[-3:]
    assert not batch.has_more
