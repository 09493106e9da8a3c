"""Each fault misbehaves as documented on its first chance, then the simulator behaves."""

from __future__ import annotations

import gzip
import http.client
import json
import time
import zlib
from urllib.parse import urljoin

import pytest

from hubasync.sim import FAULTS

API = "/shares/v2/async/demo"
DISCONNECTED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                http.client.IncompleteRead, ConnectionAbortedError)


def _status_url(hub):
    posted = hub.post(API, [("limit", "20")])
    assert posted.status == 202
    return urljoin(posted.url, posted.header("Location"))


def _results_url(hub):
    status_url = _status_url(hub)
    done = hub.get_url(status_url)
    assert done.status == 302
    return urljoin(done.url, done.header("Location"))


ANSWERS = [
    # (fault, expected status, header expectations)
    ("post-503", 503, {"Retry-After": "0.05"}),
    ("post-429", 429, {"Retry-After": "0.05"}),
    ("post-500", 500, {}),
    ("post-502", 502, {"Content-Type": "text/html"}),
    ("status-502", 502, {"Content-Type": "text/html"}),
    ("status-503", 503, {"Retry-After": "0.05"}),
    ("status-504", 504, {"Content-Type": "text/html"}),
    ("status-500", 500, {}),
    ("status-429", 429, {"Retry-After": "0.05"}),
    ("results-502", 502, {"Content-Type": "text/html"}),
    ("results-503", 503, {"Retry-After": "0.05"}),
    ("results-504", 504, {"Content-Type": "text/html"}),
    ("results-500", 500, {}),
    ("results-429", 429, {"Retry-After": "0.05"}),
]


@pytest.mark.parametrize(("fault", "code", "headers"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_transient_answers_then_the_retry_succeeds(make_sim, hub_for, fault, code, headers):
    sim = make_sim(faults=[fault])
    hub = hub_for(sim)
    phase = FAULTS[fault].phase
    if phase == "post":
        resp = hub.post(API)
        again = hub.post(API)
        assert again.status == 202
    elif phase == "status":
        url = _status_url(hub)
        resp = hub.get_url(url)
        assert hub.get_url(url).status == 302
    else:
        url = _results_url(hub)
        resp = hub.get_url(url)
        ok = hub.get_url(url)
        assert ok.status == 200 and len(ok.json()) == 20  # still fetchable
    assert resp.status == code
    for name, value in headers.items():
        assert resp.header(name) is not None and resp.header(name).startswith(value), name
    assert sim.stats.faults[fault] == 1


def test_retry_after_as_http_date(make_sim, hub_for):
    sim = make_sim(faults=["post-503-date", "status-retry-after-date"])
    hub = hub_for(sim)
    resp = hub.post(API)
    assert resp.status == 503 and resp.header("Retry-After").endswith(" GMT")
    running = hub.get_url(_status_url(hub))
    assert running.status == 202 and running.header("Retry-After").endswith(" GMT")


def test_status_no_retry_after_then_done(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["status-no-retry-after"]))
    url = _status_url(hub)
    resp = hub.get_url(url)
    assert resp.status == 202
    assert resp.header("Retry-After") is None
    assert urljoin(resp.url, resp.header("Location")) == url
    assert hub.get_url(url).status == 302


@pytest.mark.parametrize("fault", ["status-404", "results-404"])
def test_job_vanishes(make_sim, hub_for, fault):
    hub = hub_for(make_sim(faults=[fault]))
    url = _status_url(hub) if fault.startswith("status") else _results_url(hub)
    assert hub.get_url(url).status == 404
    assert hub.get_url(url).status == 404  # gone for good: post the query again
    assert hub.run(API, [("limit", "5")]).status == 200


def test_status_410_stale_without_x_status(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["status-410"]))
    url = _status_url(hub)
    for _ in range(2):
        resp = hub.get_url(url)
        assert resp.status == 410 and resp.header("X-STATUS") is None


@pytest.mark.parametrize("fault", ["status-expired", "results-expired"])
def test_job_expires(make_sim, hub_for, fault):
    hub = hub_for(make_sim(faults=[fault]))
    url = _status_url(hub) if fault.startswith("status") else _results_url(hub)
    for target in (url, url.replace("/results/", "/jobs/").replace("/jobs/", "/results/")):
        resp = hub.get_url(target)
        assert resp.status == 410 and resp.header("X-STATUS") == "Job expired"


def test_results_410_consumes_the_job(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["results-410"]))
    url = _results_url(hub)
    resp = hub.get_url(url)
    assert resp.status == 410 and resp.header("X-STATUS") is None
    assert hub.get_url(url).status == 410


@pytest.mark.parametrize("fault", ["post-drop", "post-reset", "status-drop", "status-reset",
                                   "results-drop"])
def test_connection_closed_without_an_answer(make_sim, hub_for, fault):
    sim = make_sim(faults=[fault])
    hub = hub_for(sim)
    phase = FAULTS[fault].phase
    url = None if phase == "post" else _status_url(hub) if phase == "status" else _results_url(hub)
    with pytest.raises(DISCONNECTED):
        hub.post(API) if url is None else hub.get_url(url)
    assert sim.stats.faults[fault] == 1
    if phase == "results":
        assert hub.get_url(url).status == 410  # the job counts as fetched
    elif phase == "status":
        assert hub.get_url(url).status == 302
    else:
        assert hub.post(API).status == 202


@pytest.mark.parametrize("fault", ["results-truncated", "results-reset", "results-stall"])
def test_body_cut_short_and_job_consumed(make_sim, hub_for, fault):
    sim = make_sim(events=3000, page_max=3000, faults=[fault], fault_delay=0.2)
    hub = hub_for(sim)
    posted = hub.post(API)
    done = hub.get_url(urljoin(posted.url, posted.header("Location")))
    url = urljoin(done.url, done.header("Location"))
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", url[len(sim.url):], headers={
        "Authorization": f"token {sim.apikey}", "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    declared = int(resp.getheader("Content-Length"))
    with pytest.raises(DISCONNECTED) as info:
        resp.read()
    if isinstance(info.value, http.client.IncompleteRead):
        assert 0 < len(info.value.partial) < declared
    conn.close()
    assert hub.get_url(url).status == 410


def test_bad_gzip_is_corrupt(make_sim, hub_for):
    sim = make_sim(faults=["results-bad-gzip"])
    url = _results_url(hub_for(sim))
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", url[len(sim.url):], headers={
        "Authorization": f"token {sim.apikey}", "Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip"
    assert len(body) == int(resp.getheader("Content-Length"))
    with pytest.raises((OSError, EOFError, zlib.error)):
        gzip.decompress(body)
    conn.close()


def test_bad_gzip_needs_a_gzip_request(make_sim, hub_for):
    sim = make_sim(faults=["results-bad-gzip"])
    hub = hub_for(sim)
    assert len(hub.run(API, [("limit", "5")], gzip_ok=False).json()) == 5
    assert sim.stats.faults["results-bad-gzip"] == 0


@pytest.mark.parametrize("gzip_ok", [True, False])
def test_bad_json_is_invalid(make_sim, hub_for, gzip_ok):
    hub = hub_for(make_sim(faults=["results-bad-json"]))
    resp = hub.run(API, [("limit", "50")], gzip_ok=gzip_ok)
    assert resp.status == 200
    assert resp.body.startswith(b'[{"') and resp.body.endswith(b"]")
    with pytest.raises(ValueError):
        json.loads(resp.body)
    again = hub.get_url(resp.url)
    assert again.status == 410


def test_empty_body(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["results-empty"]))
    resp = hub.run(API)
    assert resp.status == 200 and resp.body == b"" and resp.header("Content-Length") == "0"


@pytest.mark.parametrize("fault", ["results-slow", "results-trickle", "post-slow", "status-slow"])
def test_slow_faults_take_fault_delay_and_deliver(make_sim, hub_for, fault):
    sim = make_sim(faults=[fault], fault_delay=0.3)
    hub = hub_for(sim)
    t0 = time.monotonic()
    resp = hub.run(API, [("limit", "200")])
    assert time.monotonic() - t0 >= 0.28
    assert resp.json() == hub.run(API, [("limit", "200")]).json()
    assert sim.stats.faults[fault] == 1


def test_trickle_splits_the_body(make_sim):
    sim = make_sim(faults=["results-trickle"], fault_delay=0.2)
    hub_posted = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    headers = {"Authorization": f"token {sim.apikey}", "Accept-Encoding": "gzip"}
    hub_posted.request("POST", API + "?limit=100", headers=headers)
    status = hub_posted.getresponse()
    status.read()
    hub_posted.request("GET", status.getheader("Location"), headers=headers)
    done = hub_posted.getresponse()
    done.read()
    hub_posted.request("GET", done.getheader("Location"), headers=headers)
    resp = hub_posted.getresponse()
    pieces = []
    while True:
        piece = resp.read1(65536)
        if not piece:
            break
        pieces.append(piece)
    hub_posted.close()
    assert len(pieces) > 10
    assert len(json.loads(gzip.decompress(b"".join(pieces)))) == 100


def test_chunked_transfer(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["results-chunked"]))
    resp = hub.run(API, [("limit", "300")])
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.header("Content-Length") is None
    assert len(resp.json()) == 300


def test_no_gzip_despite_asking(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["results-no-gzip"]))
    resp = hub.run(API, [("limit", "30")])
    assert resp.header("Content-Encoding") is None
    assert len(resp.json()) == 30


def test_keepalive_drop_closes_silently(make_sim):
    sim = make_sim(faults=["keepalive-drop"])
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    headers = {"Authorization": f"token {sim.apikey}"}
    conn.request("POST", API, headers=headers)
    first = conn.getresponse()
    first.read()
    assert first.status == 202 and first.getheader("Connection") is None
    time.sleep(0.1)
    with pytest.raises(DISCONNECTED):
        conn.request("GET", first.getheader("Location"), headers=headers)
        conn.getresponse()
    conn.close()
    assert sim.stats.faults["keepalive-drop"] == 1


def test_count_and_order_of_counted_faults(make_sim, hub_for):
    sim = make_sim(faults=["results-503:2", "results-500"])
    hub = hub_for(sim)
    url = _results_url(hub)
    assert [hub.get_url(url).status for _ in range(4)] == [503, 503, 500, 200]
    assert sim.stats.faults == {"results-503": 2, "results-500": 1}


def test_random_mode_is_deterministic_for_a_seed(make_sim, hub_for):
    def trace(seed):
        sim = make_sim(fault_rate=0.5, seed=seed, faults=["results-503", "status-502"])
        hub = hub_for(sim)
        codes = []
        for _ in range(30):
            posted = hub.post(API, [("limit", "1")])
            resp = hub.get_url(urljoin(posted.url, posted.header("Location")))
            codes.append(resp.status)
            if resp.status == 302:
                codes.append(hub.get_url(urljoin(resp.url, resp.header("Location"))).status)
        return codes, dict(sim.stats.faults)

    one, two = trace(5), trace(5)
    assert one == two
    assert set(one[0]) == {200, 302, 502, 503}
    assert 0 < sum(one[1].values()) < 60


def test_unknown_fault_is_rejected(make_sim):
    with pytest.raises(ValueError, match="unknown fault"):
        make_sim(faults=["results-teapot"])


def test_status_slow_still_sends_retry_after(make_sim, hub_for):
    hub = hub_for(make_sim(faults=["status-slow"], fault_delay=0.1, job_latency=5))
    resp = hub.get_url(_status_url(hub))
    assert resp.status == 202 and resp.header("Retry-After") == "0.05"
