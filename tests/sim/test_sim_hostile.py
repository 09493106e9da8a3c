"""The hostile faults, each checked over a real socket: what a client must defend against."""

from __future__ import annotations

import http.client
import json
import time
import zlib
from pathlib import Path
from urllib.parse import urljoin

import pytest
from processes import wait_until

import hubasync.sim.server as server_module
from hubasync.sim import ALL_FAULTS, FAULTS, HOSTILE_FAULTS
from hubasync.sim import faults as F
from hubasync.sim.faults import FaultPlan

API = "/shares/v2/async/demo"
GIB = 1 << 30


def _status_url(hub, params=(("limit", "20"),)):
    posted = hub.post(API, list(params))
    assert posted.status == 202
    return urljoin(posted.url, posted.header("Location"))


def _results_url(hub, params=(("limit", "20"),)):
    status_url = _status_url(hub, params)
    done = hub.get_url(status_url)
    assert done.status == 302, done.status
    return urljoin(done.url, done.header("Location"))


def _raw_get(sim, url, gzip_ok=True, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=timeout)
    headers = {"Authorization": f"token {sim.apikey}"}
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    conn.request("GET", url[len(sim.url):], headers=headers)
    return conn, conn.getresponse()


# -- the catalogue ---------------------------------------------------------------------------------

def test_every_hostile_fault_of_the_brief_exists_and_is_marked():
    names = {
        "status-pending-forever", "results-trickle-forever", "results-same-token",
        "results-token-cycle", "results-endless-empty", "results-endless-repeat",
        "results-more-events", "results-gzip-bomb-string", "results-gzip-bomb-whitespace",
        "results-gzip-bomb-nesting", "status-303", "auth-echo-key",
    }
    assert set(HOSTILE_FAULTS) == names
    assert all(f.hostile for f in HOSTILE_FAULTS.values())
    assert not any(f.hostile for f in FAULTS.values())
    assert ALL_FAULTS == {**FAULTS, **HOSTILE_FAULTS}


def test_every_fault_is_data_the_server_understands():
    bodies = {v for k, v in vars(F).items() if k.isupper() and isinstance(v, str)}
    for fault in ALL_FAULTS.values():
        assert fault.phase in F.PHASES, fault
        assert fault.body in bodies and fault.job in bodies, fault
        assert set(fault.headers) <= bodies, fault
        assert fault.tokens in bodies | {""}, fault


def test_the_server_never_matches_fault_names():
    source = Path(server_module.__file__).read_text(encoding="utf-8")
    for name in ALL_FAULTS:
        assert f'"{name}"' not in source, name
    for phase in ("post", "status", "results"):
        assert f'"{phase}-' not in source


def test_random_mode_draws_hostile_faults_only_when_named():
    plan = FaultPlan(rate=1.0, seed=3)
    drawn = {plan.draw(phase).name for phase in ("post", "status", "results") for _ in range(300)}
    assert drawn and drawn <= set(FAULTS)
    assert len(drawn) > 20
    named = FaultPlan(["results-same-token", "results-503"], rate=1.0, seed=3)
    picked = {named.draw("results").name for _ in range(100)}
    assert picked == {"results-same-token", "results-503"}


# -- status ----------------------------------------------------------------------------------------

def test_status_pending_forever(make_sim, hub_for):
    sim = make_sim(faults=["status-pending-forever"])
    hub = hub_for(sim)
    url = _status_url(hub)
    answers = [hub.get_url(url) for _ in range(25)]
    assert [a.status for a in answers] == [202] * 25
    assert all(a.header("Retry-After") == "0.05" for a in answers)
    assert all(urljoin(a.url, a.header("Location")) == url for a in answers)
    results = url.replace("/jobs/", "/results/")
    assert hub.get_url(results).status == 404  # never finished
    assert sim.stats.faults["status-pending-forever"] == 1  # one job pinned, for good
    assert hub.get_url(_status_url(hub)).status == 302  # other jobs finish


def test_status_pending_forever_outlives_the_result_ttl(make_sim, hub_for):
    sim = make_sim(faults=["status-pending-forever"], result_ttl=0.2)
    hub = hub_for(sim)
    url = _status_url(hub)
    assert hub.get_url(url).status == 202
    time.sleep(0.3)
    assert hub.get_url(url).status == 202


def test_status_303_instead_of_302(make_sim, hub_for):
    sim = make_sim(faults=["status-303"], job_latency=0.3)
    hub = hub_for(sim)
    url = _status_url(hub)
    running = hub.get_url(url)
    assert running.status == 202  # a running job is no chance for it
    done = hub.wait_done(url)
    assert done.status == 303
    results = hub.get_url(urljoin(done.url, done.header("Location")))
    assert results.status == 200 and len(results.json()) == 20
    assert hub.get_url(url).status == 302  # one chance only
    assert sim.stats.faults["status-303"] == 1


# -- auth ------------------------------------------------------------------------------------------

def test_auth_echo_key_quotes_the_key_for_count_requests(make_sim, hub_for):
    sim = make_sim(faults=["auth-echo-key:2"], apikey="s3cret-key")
    hub = hub_for(sim)
    first = hub.post(API)
    second = hub.get_url(sim.share_url("demo", count=True, sync=True), key=None)
    for resp in (first, second):
        assert resp.status == 401
        assert resp.json()["description"] == "Invalid API key: s3cret-key"
        assert resp.header("WWW-Authenticate") is not None
    assert hub.post(API).status == 202
    assert sim.stats.faults["auth-echo-key"] == 2


def test_auth_echo_key_does_not_fire_on_a_wrong_key(make_sim, hub_for):
    sim = make_sim(faults=["auth-echo-key"])
    hub = hub_for(sim)
    wrong = hub.post(API, key="nope")
    assert wrong.status == 401 and "nope" not in wrong.body.decode()
    assert sim.stats.faults["auth-echo-key"] == 0


# -- results: bodies -------------------------------------------------------------------------------

def test_results_trickle_forever_until_the_client_leaves(make_sim, hub_for):
    sim = make_sim(faults=["results-trickle-forever"], fault_delay=0.05)
    hub = hub_for(sim)
    url = _results_url(hub)
    conn, resp = _raw_get(sim, url)
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Encoding") is None
    got = b""
    while got.count(b" ") < 5 or not got.endswith(b" "):
        piece = resp.read1(4096)
        assert piece, "the body ended"
        got += piece
    head = got.rstrip(b" ")
    assert head.startswith(b'[{"') and head.endswith(b"}")
    assert json.loads(head + b"]")[0] == hub.run(API, [("limit", "1")]).json()[0]
    assert len(sim.hub.connections) >= 1
    conn.close()
    wait_until(lambda: len(sim.hub.connections) <= 1,  # only the helper's own connection is left
               "the other connections closed")
    assert hub.get_url(url).status == 410  # the job was consumed


def test_results_trickle_forever_notices_at_once_that_the_client_left(make_sim, hub_for):
    sim = make_sim(faults=["results-trickle-forever"], fault_delay=30)
    hub = hub_for(sim)
    url = _results_url(hub)
    hub.close()
    conn, resp = _raw_get(sim, url)
    assert resp.read1(4096).startswith(b"[{")
    assert len(sim.hub.connections) == 1
    conn.close()
    # not after the next 30 s pause
    wait_until(lambda: not sim.hub.connections, "the connection closed", timeout=15)


def test_results_trickle_forever_ends_when_the_simulator_stops(make_sim, hub_for):
    sim = make_sim(faults=["results-trickle-forever"], fault_delay=0.05)
    url = _results_url(hub_for(sim))
    conn, resp = _raw_get(sim, url)
    assert resp.read1(4096).startswith(b"[")
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 10
    with pytest.raises((http.client.IncompleteRead, ConnectionError, OSError)):
        while resp.read1(4096):
            pass
    conn.close()


@pytest.mark.parametrize("kind", ["string", "whitespace", "nesting"])
def test_gzip_bombs_inflate_past_a_gib_from_a_few_mb(make_sim, hub_for, kind):
    fault = f"results-gzip-bomb-{kind}"
    sim = make_sim(faults=[fault])
    url = _results_url(hub_for(sim))
    conn, resp = _raw_get(sim, url, gzip_ok=kind != "string")  # sent gzip even when not asked
    assert resp.status == 200 and resp.getheader("Content-Encoding") == "gzip"
    assert resp.getheader("X-Next-Token") is None
    inflate = zlib.decompressobj(31)
    received = inflated = 0
    head = b""
    opened = closed = 0
    odd = 0
    while True:
        packed = resp.read(65536)
        if not packed:
            break
        received += len(packed)
        data = inflate.decompress(packed, 1 << 20)
        while True:
            if len(head) < 200:
                head += data[: 200 - len(head)]
            inflated += len(data)
            if kind == "nesting":
                opened += data.count(b"[")
                closed += data.count(b"]")
            elif inflated > 1000:
                odd += len(data.strip(b"a" if kind == "string" else b" ")) > 10
            if not inflate.unconsumed_tail:
                break
            data = inflate.decompress(inflate.unconsumed_tail, 1 << 20)
    conn.close()
    assert inflate.eof  # the whole member, CRC and size checked by zlib
    assert received == int(resp.getheader("Content-Length")) < 8 * 1024 * 1024
    assert inflated >= GIB
    assert head.startswith(b'[{"observation time":')
    if kind == "nesting":
        assert opened >= GIB // 2 and opened == closed
    else:
        assert odd <= 2  # the run is one byte repeated; only its two ends differ


def test_a_bomb_is_built_once():
    from hubasync.sim import bombs

    first = bombs.bomb("whitespace")
    assert bombs.bomb("whitespace") is first
    assert bombs.inflated_size("whitespace") >= GIB


# -- results: tokens and pages ---------------------------------------------------------------------

def _page(hub, token=None, limit="100"):
    params = [("sort", "_id"), ("limit", limit)] + ([("token", token)] if token else [])
    resp = hub.run(API, params)
    assert resp.status == 200, resp.body
    return resp


def test_results_same_token_without_and_with_a_token(make_sim, hub_for):
    sim = make_sim(faults=["results-same-token:3"])
    hub = hub_for(sim)
    first = _page(hub)
    start = first.header("X-Next-Token")
    again = _page(hub, start)
    assert again.json() == first.json()  # the token names the start
    assert again.header("X-Next-Token") == start
    token = _page(hub, start).header("X-Next-Token")
    assert token == start
    normal = _page(hub, start)
    assert normal.json() == first.json()
    assert normal.header("X-Next-Token") != start
    assert sim.stats.faults["results-same-token"] == 3


def test_results_same_token_keeps_a_given_token_and_survives_the_last_page(make_sim, hub_for):
    sim = make_sim(events=150, faults=["results-same-token:2"])
    hub = hub_for(sim)
    plain = make_sim(events=150)
    token = _page(hub_for(plain)).header("X-Next-Token")
    last = _page(hub, token)
    assert last.header("X-Next-Token") == token  # even on the last page
    assert len(last.json()) == 50


@pytest.mark.parametrize("order", [[], [("reverse", "true")], [("sort", "_id"), ("reverse", "1")]])
def test_results_same_token_names_the_start_in_every_order(make_sim, hub_for, order):
    sim = make_sim(faults=["results-same-token"])
    hub = hub_for(sim)
    first = hub.run(API, order + [("limit", "30")])
    again = hub.run(API, order + [("limit", "30"), ("token", first.header("X-Next-Token"))])
    assert again.status == 200 and again.json() == first.json()


def test_results_token_cycle_from_the_third_page(make_sim, hub_for):
    sim = make_sim(faults=["results-token-cycle"])
    hub = hub_for(sim)
    one = _page(hub)
    two = _page(hub, one.header("X-Next-Token"))
    three = _page(hub, two.header("X-Next-Token"))
    assert sim.stats.faults["results-token-cycle"] == 1
    assert three.header("X-Next-Token") == one.header("X-Next-Token")  # page 2's token


def test_results_token_cycle_loops_forever(make_sim, hub_for):
    sim = make_sim(faults=["results-token-cycle:1000"])
    hub = hub_for(sim)
    token = None
    seen = []
    for _ in range(8):
        token = _page(hub, token).header("X-Next-Token")
        seen.append(token)
    assert len(set(seen)) == 2 and seen[2:] == seen[:2] * 3


def test_results_endless_empty(make_sim, hub_for):
    sim = make_sim(faults=["results-endless-empty:6"])
    hub = hub_for(sim)
    tokens = []
    token = None
    for _ in range(6):
        page = _page(hub, token)
        assert page.json() == [] and page.header("X-First-Token") is None
        token = page.header("X-Next-Token")
        tokens.append(token)
    assert len(set(tokens)) == 6  # a fresh token every time
    after = _page(hub, token)  # the fresh tokens still name the start
    assert after.json() == sim.share_events("demo")[:100]


def test_results_endless_repeat(make_sim, hub_for):
    sim = make_sim(faults=["results-endless-repeat:5"])
    hub = hub_for(sim)
    first = _page(hub)
    tokens = {first.header("X-Next-Token")}
    token = first.header("X-Next-Token")
    for _ in range(4):
        page = _page(hub, token)
        assert page.json() == first.json() == sim.share_events("demo")[:100]
        token = page.header("X-Next-Token")
        tokens.add(token)
    assert len(tokens) == 5
    assert _page(hub, token).json() == first.json()  # the fault is spent: the page itself
    assert sim.stats.faults["results-endless-repeat"] == 5


@pytest.mark.parametrize("limit", ["10", None])
def test_results_more_events_than_the_limit(make_sim, hub_for, limit):
    sim = make_sim(faults=["results-more-events"], page_max=200)
    hub = hub_for(sim)
    params = [("sort", "_id")] + ([("limit", limit)] if limit else [])
    got = hub.run(API, params).json()
    asked = int(limit) if limit else 200
    assert got == sim.share_events("demo")[: asked + 1]
    assert len(hub.run(API, params).json()) == asked  # one chance only


def test_token_faults_leave_count_queries_alone(make_sim, hub_for):
    sim = make_sim(faults=["results-same-token"])
    hub = hub_for(sim)
    assert hub.run(API + "/count").json() == {"count": 2500}
    assert sim.stats.faults["results-same-token"] == 0
