"""The job's three phases, fed answers by hand: every branch, no network."""

from __future__ import annotations

from typing import Dict

import pytest
from fakehub import answer

from hubasync.core.answers import Read
from hubasync.core.job import OPEN, QUERY, RESULTS, STATUS, Job
from hubasync.core.polling import PollPlanner
from hubasync.core.retry import RetryPolicy
from hubasync.errors import AuthError, HubBusy, JobGone, JobTimeout, QueryRejected

QUERY_URL = "https://hub.test/shares/v2/async/demo?limit=10"
STATUS_URL = "https://hub.test/shares/v2/async/demo/jobs/J1"
RESULTS_URL = "https://hub.test/shares/v2/async/demo/results/J1"


def new_job(job_timeout: float = 100.0, first_guess: float = 0.0) -> Job:
    return Job(QUERY_URL, planner=PollPlanner(first_guess), policy=RetryPolicy(retry_after_max=30),
               job_timeout=job_timeout)


def accepted(job: Job, at: float = 10.0) -> None:
    assert job.receive(answer(QUERY_URL, 202, Location="demo/jobs/J1"), sent_at=at, now=at) is None


def test_a_job_from_post_to_open_results() -> None:
    job = new_job(first_guess=0.25)
    first = job.next_request()
    assert (first.method, first.url, first.phase, first.at) == ("POST", QUERY_URL, QUERY, 0.0)
    accepted(job, at=10.0)
    poll = job.next_request()
    assert (poll.method, poll.url, poll.phase) == ("GET", STATUS_URL, STATUS)
    assert poll.at == pytest.approx(10.25)  # the poll clock's first guess after the POST
    assert job.receive(answer(STATUS_URL, 302, Location="../results/J1"), sent_at=10.3,
                       now=10.3) is None
    fetch = job.next_request()
    assert (fetch.url, fetch.phase, fetch.at) == (RESULTS_URL, RESULTS, 0.0)
    read = job.receive(answer(RESULTS_URL, 200, X_Next_Token="T2",
                              X_Last_Inserted_Token="L"), sent_at=10.4, now=10.4)
    assert read == Read("T2", "L") and job.phase == OPEN


def test_a_303_also_means_done() -> None:
    job = new_job()
    accepted(job)
    job.receive(answer(STATUS_URL, 303, Location=RESULTS_URL), sent_at=11, now=11)
    assert job.next_request().url == RESULTS_URL


def test_pending_polls_wait_retry_after_capped_by_the_policy() -> None:
    job = new_job()
    accepted(job, at=10.0)
    job.receive(answer(STATUS_URL, 202, Location="J1", Retry_After="2"), sent_at=10, now=10.5)
    assert job.next_request().at == pytest.approx(12.5)
    job.receive(answer(STATUS_URL, 202, Location="J1", Retry_After="3600"), sent_at=12.5,
                now=12.5)
    assert job.next_request().at == pytest.approx(42.5)  # capped at 30


def test_pending_polls_without_retry_after_step_up() -> None:
    job = new_job()
    accepted(job, at=0.0)
    waits = []
    for _ in range(6):
        now = job.next_request().at
        job.receive(answer(STATUS_URL, 202, Location="J1"), sent_at=now, now=now)
        waits.append(round(job.next_request().at - now, 3))
    assert waits == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_job_pending_past_its_timeout_ends_the_run() -> None:
    job = new_job(job_timeout=5.0)
    accepted(job, at=0.0)
    job.receive(answer(STATUS_URL, 202, Location="J1", Retry_After="1"), sent_at=4, now=4.9)
    with pytest.raises(JobTimeout) as caught:
        job.receive(answer(STATUS_URL, 202, Location="J1", Retry_After="1"), sent_at=5, now=5.1)
    assert not caught.value.transient and "--job-timeout" in str(caught.value)


def test_transient_answers_keep_the_phase() -> None:
    job = new_job()
    with pytest.raises(HubBusy) as busy:
        job.receive(answer(QUERY_URL, 503, Retry_After="7"), sent_at=0, now=0)
    assert busy.value.retry_after == 7.0 and busy.value.transient
    assert job.next_request().phase == QUERY
    accepted(job)
    with pytest.raises(HubBusy):
        job.receive(answer(STATUS_URL, 502), sent_at=11, now=11)
    again = job.next_request()
    assert (again.phase, again.url, again.at) == (STATUS, STATUS_URL, 0.0)
    job.receive(answer(STATUS_URL, 302, Location=RESULTS_URL), sent_at=12, now=12)
    with pytest.raises(HubBusy):
        job.receive(answer(RESULTS_URL, 429), sent_at=13, now=13)
    assert job.next_request().phase == RESULTS


def test_accepted_without_location_is_retried() -> None:
    job = new_job()
    with pytest.raises(HubBusy):
        job.receive(answer(QUERY_URL, 202), sent_at=0, now=0)
    assert job.next_request().phase == QUERY


@pytest.mark.parametrize("phase, status, headers", [
    (STATUS, 410, {"X_STATUS": "Job expired"}),
    (STATUS, 410, {}),
    (STATUS, 404, {}),
    (RESULTS, 410, {}),
    (RESULTS, 404, {}),
])
def test_a_job_gone_is_posted_again(phase: str, status: int, headers: Dict[str, str]) -> None:
    job = new_job()
    accepted(job)
    if phase == RESULTS:
        job.receive(answer(STATUS_URL, 302, Location=RESULTS_URL), sent_at=11, now=11)
    url = RESULTS_URL if phase == RESULTS else STATUS_URL
    with pytest.raises(JobGone) as gone:
        job.receive(answer(url, status, **headers), sent_at=12, now=12)
    assert gone.value.transient
    request = job.next_request()
    assert (request.method, request.url, request.phase) == ("POST", QUERY_URL, QUERY)


def test_results_opened_but_not_read_to_the_end_are_posted_again() -> None:
    job = new_job()
    accepted(job)
    job.receive(answer(STATUS_URL, 302, Location=RESULTS_URL), sent_at=11, now=11)
    job.receive(answer(RESULTS_URL, 200), sent_at=12, now=12)
    assert job.phase == OPEN
    request = job.next_request()  # asked again: the body failed
    assert (request.method, request.url) == ("POST", QUERY_URL)


def test_final_answers_raise_their_errors() -> None:
    with pytest.raises(AuthError):
        new_job().receive(answer(QUERY_URL, 401), sent_at=0, now=0)
    job = new_job()
    accepted(job)
    job.receive(answer(STATUS_URL, 302, Location=RESULTS_URL), sent_at=1, now=1)
    body = b'{"errors": [{"key": "token", "message": "Invalid token: x"}]}'
    with pytest.raises(QueryRejected) as rejected:
        job.receive(answer(RESULTS_URL, 400, body), sent_at=2, now=2)
    assert rejected.value.invalid_token


def test_the_poll_clock_learns_from_each_job() -> None:
    clock = PollPlanner()
    for start in (0.0, 100.0):
        job = Job(QUERY_URL, planner=clock, policy=RetryPolicy())
        job.receive(answer(QUERY_URL, 202, Location="demo/jobs/J1"), sent_at=start, now=start)
        poll = job.next_request()
        job.receive(answer(STATUS_URL, 202, Location="J1", Retry_After="1"), sent_at=poll.at,
                    now=poll.at)
        done_at = job.next_request().at
        job.receive(answer(STATUS_URL, 302, Location=RESULTS_URL), sent_at=done_at,
                    now=done_at)
    assert clock.first_delay() > 0  # polled early once: the next first poll comes later
