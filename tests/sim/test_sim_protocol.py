"""The simulator answers each status of PROTOCOL.md's table, over real sockets."""

from __future__ import annotations

import time
from urllib.parse import urljoin

from processes import wait_until

API = "/shares/v2/async/demo"


def test_post_202_status_302_results_200_once_then_410(hub):
    posted = hub.post(API, [("limit", "10")])
    assert posted.status == 202
    status_url = urljoin(posted.url, posted.header("Location"))
    assert status_url.startswith(hub.sim.url + "/shares/v2/async/demo/jobs/")
    done = hub.get_url(status_url)
    assert done.status == 302
    results_url = urljoin(done.url, done.header("Location"))
    assert "/shares/v2/async/demo/results/" in results_url
    first = hub.get_url(results_url)
    assert first.status == 200
    assert first.header("Content-Type") == "application/json"
    assert len(first.json()) == 10
    again = hub.get_url(results_url)
    assert again.status == 410
    assert again.header("X-STATUS") is None


def test_status_202_with_retry_after_while_the_job_runs(make_sim, hub_for):
    sim = make_sim(job_latency=3600, retry_after=0.25)  # surely still running when asked
    hub = hub_for(sim)
    posted = hub.post(API)
    status_url = urljoin(posted.url, posted.header("Location"))
    running = hub.get_url(status_url)
    assert running.status == 202
    assert running.header("Retry-After") == "0.25"
    assert urljoin(running.url, running.header("Location")) == status_url
    early = hub.get_url(status_url.replace("/jobs/", "/results/"))
    assert early.status == 404  # results of an unfinished job do not exist yet


def test_status_302_once_the_job_latency_passed_and_not_before(make_sim, hub_for):
    sim = make_sim(job_latency=0.5, retry_after=0.05)
    hub = hub_for(sim)
    before_post = time.time()  # the clock the simulator times its jobs with
    posted = hub.post(API)
    status_url = urljoin(posted.url, posted.header("Location"))
    done = wait_until(lambda: hub.get_url(status_url).status == 302 and time.time(),
                      "the job to finish")
    assert done - before_post >= 0.5


def test_retry_after_integer_when_whole(make_sim, hub_for):
    sim = make_sim(job_latency=5, retry_after=2)
    hub = hub_for(sim)
    posted = hub.post(API)
    assert hub.get_url(urljoin(posted.url, posted.header("Location"))).header("Retry-After") == "2"


def test_results_expire_after_ttl_with_x_status(make_sim, hub_for):
    sim = make_sim(result_ttl=0.2)
    hub = hub_for(sim)
    posted = hub.post(API)
    status_url = urljoin(posted.url, posted.header("Location"))
    time.sleep(0.3)
    status = hub.get_url(status_url)
    assert status.status == 410
    assert status.header("X-STATUS") == "Job expired"
    results = hub.get_url(status_url.replace("/jobs/", "/results/"))
    assert results.status == 410
    assert results.header("X-STATUS") == "Job expired"


def test_404_for_unknown_shares_and_jobs(hub):
    assert hub.post("/shares/v2/async/nope").status == 404
    assert hub.post("/shares/v2/async/notify").status == 404  # needs an index
    assert hub.post("/shares/v2/async/notify/2").status == 404
    assert hub.post("/shares/v2/async/demo/0").status == 404  # not a notification share
    assert hub.request("GET", API + "/jobs/feedbeef").status == 404
    assert hub.request("GET", API + "/results/feedbeef").status == 404
    assert hub.request("GET", "/elsewhere").status == 404
    posted = hub.post(API)
    jid = posted.header("Location").rsplit("/", 1)[1]
    assert hub.request("GET", f"/shares/v2/async/notify/jobs/{jid}").status == 404


def test_401_for_missing_or_wrong_key(hub):
    for key in (None, "wrong-key"):
        resp = hub.post(API, key=key)
        assert resp.status == 401
        assert resp.json()["title"] == "401 Unauthorized"
    posted = hub.post(API)
    status_path = posted.header("Location")
    assert hub.request("GET", status_path, key=None).status == 401
    assert hub.request("GET", status_path, key="wrong").status == 401
    assert hub.request("GET", status_path).status == 302


def test_async_api_does_not_take_the_key_as_a_parameter(hub):
    assert hub.post(API, [("apikey", hub.sim.apikey)], key=None).status == 401
    resp = hub.post(API, [("apikey", hub.sim.apikey)])
    assert resp.status == 400
    assert resp.json()["errors"][0]["message"] == "Unknown parameter: apikey"


def test_400_invalid_inputs_lists_each_parameter(hub):
    resp = hub.post(API, [("start", "foo"), ("startt", "1"), ("limit", "0")])
    assert resp.status == 400
    body = resp.json()
    assert body["title"] == "400 Invalid input(s)"
    assert body["description"] == "3 invalid input(s)"
    assert {"key": "start", "type": "query validation", "message": "Invalid start: ['foo']"} in (
        body["errors"])
    assert {"key": "startt", "type": "query validation",
            "message": "Unknown parameter: startt"} in body["errors"]
    assert [e["key"] for e in body["errors"]] == ["startt", "start", "limit"]


def test_status_and_results_urls_take_no_parameters(hub):
    posted = hub.post(API)
    resp = hub.request("GET", posted.header("Location"), [("limit", "5")])
    assert resp.status == 400
    assert resp.json()["errors"][0]["key"] == "limit"


def test_invalid_token_accepted_by_post_rejected_on_results(hub):
    posted = hub.post(API, [("token", "foo")])
    assert posted.status == 202
    done = hub.get_url(urljoin(posted.url, posted.header("Location")))
    resp = hub.get_url(urljoin(done.url, done.header("Location")))
    assert resp.status == 400
    assert resp.json() == {"title": "400 Bad Request", "errors": [
        {"type": "storage", "key": "token", "message": "Invalid token: foo"}]}


def test_wrong_methods_get_405(hub):
    assert hub.request("GET", API).status == 405
    posted = hub.post(API)
    assert hub.request("POST", posted.header("Location")).status == 405
    assert hub.request("DELETE", API).status == 405


def test_relative_locations_resolve_only_against_the_request_url(make_sim, hub_for):
    sim = make_sim(relative_locations=True)
    hub = hub_for(sim)
    posted = hub.post(API)
    location = posted.header("Location")
    assert location.startswith("demo/jobs/")
    status_url = urljoin(posted.url, location)
    assert hub.get_url(urljoin(sim.url + "/", location)).status == 404  # host-root: wrong
    running = hub.get_url(status_url)
    assert running.status == 302
    assert running.header("Location").startswith("../results/")
    assert hub.get_url(urljoin(running.url, running.header("Location"))).status == 200
    # notification and count URLs resolve to the share's jobs/ too
    for path in ("/shares/v2/async/notify/1", "/shares/v2/async/notify/0/count", API + "/count"):
        posted = hub.post(path)
        resolved = urljoin(posted.url, posted.header("Location"))
        assert "/jobs/" in resolved and hub.get_url(resolved).status == 302, path


def test_gzip_only_when_asked(hub):
    resp = hub.run(API, [("limit", "3")], gzip_ok=True)
    assert resp.header("Content-Encoding") == "gzip"
    plain = hub.run(API, [("limit", "3")], gzip_ok=False)
    assert plain.header("Content-Encoding") is None
    assert plain.json() == resp.json()
    assert int(plain.header("Content-Length")) == len(plain.body)


def test_count_results(hub):
    resp = hub.run(API + "/count")
    assert resp.status == 200
    assert resp.json() == {"count": 2500}
    assert hub.run("/shares/v2/async/notify/0/count").json() == {"count": 1250}


def test_sync_api_answers_directly(hub):
    key = hub.sim.apikey
    for path in ("/shares/v2/demo", "/shares/demo"):
        resp = hub.request("GET", path, [("apikey", key), ("limit", "5")], key=None)
        assert resp.status == 200
        assert resp.json() == sorted(hub.sim.share_events(),
                                     key=lambda e: e["observation time"])[:5]
        assert resp.header("X-Next-Token")
    count = hub.request("GET", "/shares/v2/demo/count", [("apikey", key)], key=None)
    assert count.json() == {"count": 2500}
    assert hub.request("GET", "/shares/v2/demo", key=None).status == 401
    assert hub.request("GET", "/shares/v2/demo", [("apikey", "bad")], key=None).status == 401
    assert hub.request("GET", "/shares/v2/nope", [("apikey", key)], key=None).status == 404
    bad = hub.request("GET", "/shares/v2/demo", [("apikey", key), ("x", "1")], key=None)
    assert bad.status == 400 and bad.json()["title"] == "400 Invalid input(s)"


def test_keep_alive_one_connection_for_a_whole_download(hub):
    before = hub.sim.stats.connections
    events, pages = hub.fetch_all(API)
    assert len(events) == 2500 and len(pages) == 3
    assert hub.sim.stats.connections - before == 1


def test_stats_count_phases_and_statuses(hub):
    hub.run(API)
    snap = hub.sim.stats.snapshot()
    assert snap["requests"] == {"post": 1, "status": 1, "results": 1}
    assert snap["statuses"] == {202: 1, 302: 1, 200: 1}
