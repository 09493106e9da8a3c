"""Many API shares (``shares=N``): each its own events, growth and key refusal, over sockets."""

from __future__ import annotations

import http.client
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from processes import wait_until

from hubasync.sim import SimConfig, Simulator


def _path(sim, share, count=False):
    return sim.share_url(share, count=count)[len(sim.url):]


def test_each_share_serves_its_own_events(make_sim, hub_for):
    sim = make_sim(shares=3, events=120, page_max=50)
    hub = hub_for(sim)
    uuids = []
    for name in ("s1", "s2", "s3"):
        events, pages = hub.fetch_all(_path(sim, name), [("sort", "_id")])
        assert events == sim.share_events(name)
        assert len(events) == 120 and len(pages) == 3
        uuids.append({e["uuid"] for e in events})
    assert not (uuids[0] & uuids[1]) and not (uuids[1] & uuids[2])
    assert len(sim.share_events("demo")) == 120  # demo stays
    assert hub.post(_path(sim, "s4")).status == 404
    assert hub.post("/shares/v2/async/s0").status == 404


def test_shares_are_deterministic_for_a_seed():
    def first(seed):  # times follow the clock; the rest is the seed's
        sim = Simulator(SimConfig(port=0, shares=2, events=5, seed=seed))
        return [(e["uuid"], e["ip"]) for e in sim.share_events("s2")]

    assert first(4) == first(4)
    assert first(4) != first(5)


def test_no_extra_shares_by_default(sim, hub_for):
    hub = hub_for(sim)
    assert hub.post("/shares/v2/async/s1").status == 404


def test_append_events_grows_one_share(make_sim, hub_for):
    sim = make_sim(shares=3, events=10)
    hub = hub_for(sim)
    assert sim.append_events("s2", 5) == 15
    counts = {n: hub.run(_path(sim, n, count=True)).json()["count"] for n in ("s1", "s2", "s3")}
    assert counts == {"s1": 10, "s2": 15, "s3": 10}
    tail = hub.run(_path(sim, "s2"), [("sort", "_id")]).json()[-5:]
    assert tail == sim.share_events("s2")[-5:]


def test_grow_grows_every_share_on_its_own(make_sim):
    sim = make_sim(shares=2, events=10, grow=40)
    wait_until(lambda: all(len(sim.share_events(n)) >= 20 for n in ("demo", "s1", "s2")),
               "every share to grow by 10 events")
    uuids = [{e["uuid"] for e in sim.share_events(n)[10:]} for n in ("s1", "s2")]
    assert not uuids[0] & uuids[1]


def test_a_refused_share_answers_401_and_the_others_serve(make_sim, hub_for):
    sim = make_sim(shares=2, events=30, refused_shares=("s2",))
    hub = hub_for(sim)
    refused = hub.post(_path(sim, "s2"))
    assert refused.status == 401 and refused.json()["description"] == "Invalid API key"
    assert hub.get_url(sim.share_url("s2", sync=True), key=None).status == 401
    assert hub.run(_path(sim, "s1")).status == 200
    assert hub.run(_path(sim, "demo")).status == 200


def test_refuse_key_at_run_time_and_back(make_sim, hub_for):
    sim = make_sim(shares=2, events=30)
    hub = hub_for(sim)
    posted = hub.post(_path(sim, "s1"))
    assert posted.status == 202
    sim.refuse_key("s1")
    status_url = sim.url + posted.header("Location")
    assert hub.get_url(status_url).status == 401  # also mid-job
    assert hub.post(_path(sim, "s1")).status == 401
    assert hub.post(_path(sim, "s2")).status == 202
    sim.refuse_key("s1", refused=False)
    assert hub.get_url(status_url).status == 302
    assert hub.run(_path(sim, "s1")).status == 200


def test_refusing_the_notification_share(make_sim, hub_for):
    sim = make_sim(refused_shares=("notify",))
    hub = hub_for(sim)
    assert hub.post("/shares/v2/async/notify/0").status == 401
    assert hub.post("/shares/v2/async/demo").status == 202


@pytest.mark.parametrize("fields, message", [
    ({"shares": -1}, "shares"),
    ({"shares": 2, "refused_shares": ("s3",)}, "refuse-key"),
    ({"refused_shares": ("s1",)}, "refuse-key"),
])
def test_bad_share_options_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Simulator(SimConfig(port=0, **fields))


def test_cli_serves_many_shares_and_refuses_one(tmp_path):
    err = tmp_path / "err"
    with open(err, "w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "7",
             "--shares", "3", "--refuse-key", "s2"],
            stdout=subprocess.PIPE, stderr=err_file, text=True,
        )
    try:
        url = proc.stdout.readline().strip()
        parts = urlsplit(url)
        codes = {}
        for name in ("s1", "s2", "s3", "s4"):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", f"/shares/v2/{name}/count?apikey=demo-key")
            resp = conn.getresponse()
            codes[name] = (resp.status, resp.read())
            conn.close()
        # its stderr line comes after the URL on stdout: a loaded machine may not have written it
        wait_until(lambda: "ready in" in err.read_text(), "the simulator's ready line")
        proc.terminate()
        proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert codes["s1"] == (200, b'{"count": 7}') and codes["s3"] == (200, b'{"count": 7}')
    assert codes["s2"][0] == 401 and codes["s4"][0] == 404
    assert proc.returncode == 0
    assert "s1..s3" in err.read_text()
