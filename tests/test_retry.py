"""The retry policy: delays, Retry-After, and giving up."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest

from hubasync.core.polling import JobTiming, PollPlanner
from hubasync.core.retry import Attempts, RetryPolicy, parse_retry_after
from hubasync.errors import (
    HubasyncError,
    HubBusy,
    HubUnavailable,
    JobTimeout,
    NetworkError,
    NoProgress,
    ProtocolError,
    QueryRejected,
)


# Each case names the check of parse_retry_after that it is there to catch.
@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("  ", None),  # absent
    ("3", 3.0), (" 10 ", 10.0), ("1.5", 1.5), ("0", 0.0), (".5", 0.5),  # delta-seconds
    ("1e999", None),  # digits float() makes infinite: the range check
    ("1.2.3", None), ("3 s", None),  # digits float() refuses: no exception escapes
    ("1\u0663", None),  # an Arabic-Indic digit after an ASCII one: float() would take it
    ("-1", None), ("nan", None), ("inf", None), ("soon", None),  # no digit first: not seconds
    ("Thu, 01 Jan 1970 00:01:40 GMT", 60.0),  # 100 s after the epoch, "now" is 40: now counts
    ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0),  # 30 s in the past: no wait, never a negative one
    ("Thu, 01 Jan 1970 00:01:40 -0000", None),  # no time zone: not an HTTP date
])
def test_parse_retry_after(value: object, expected: object) -> None:
    assert parse_retry_after(value, now=40.0) == expected  # type: ignore[arg-type]


def test_parse_retry_after_dates_count_from_the_clock_without_now() -> None:
    in_an_hour = formatdate(time.time() + 3600, usegmt=True)
    seconds = parse_retry_after(in_an_hour)
    assert seconds is not None and 3500 < seconds <= 3600


def test_delay_honours_and_caps_retry_after() -> None:
    policy = RetryPolicy(retry_after_max=120)
    assert policy.delay(1, 5.0) == 5.0
    assert policy.delay(1, 10_000.0) == 120


def test_delay_backs_off_exponentially_with_jitter() -> None:
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0, rng=random.Random(1))
    for failures, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (50, 8.0)]:
        delays = {policy.delay(failures) for _ in range(20)}
        assert all(step / 2 <= d <= step for d in delays)
        assert len(delays) > 1  # jittered


def test_attempts_give_up_after_retries_saying_what_failed() -> None:
    attempts = Attempts(RetryPolicy(retries=3))
    waits = [attempts.failed(HubBusy("results: HTTP 503", 1.0)),
             attempts.failed(HubBusy("results: HTTP 503", 1.0)),
             attempts.failed(NetworkError("connection reset"))]
    assert waits[:2] == [1.0, 1.0] and 1.0 <= waits[2] <= 2.0  # the third backoff step
    with pytest.raises(HubUnavailable) as caught:
        attempts.failed(NetworkError("connection reset"))
    message = str(caught.value)
    assert "4 failed attempts" in message
    assert "results: HTTP 503 x2" in message and "connection reset x2" in message
    assert caught.value.exit_code == 6


def test_success_resets_the_budget() -> None:
    attempts = Attempts(RetryPolicy(retries=1))
    for _ in range(5):
        attempts.failed(NetworkError("timed out"))
        attempts.succeeded()
    with pytest.raises(HubUnavailable):
        attempts.failed(NetworkError("a"))
        attempts.failed(NetworkError("b"))


def test_zero_retries_fails_at_once() -> None:
    attempts = Attempts(RetryPolicy(retries=0))
    with pytest.raises(HubUnavailable):
        attempts.failed(NetworkError("connection refused"))


@pytest.mark.parametrize("error", [ProtocolError("foreign Location"), QueryRejected("bad"),
                                   JobTimeout("pending"), NoProgress("circle")])
def test_a_final_error_is_raised_again_and_never_waited_on(error: HubasyncError) -> None:
    noted: list[float] = []
    attempts = Attempts(RetryPolicy(retries=5),
                        on_retry=lambda reason, wait, failures: noted.append(wait))
    with pytest.raises(type(error)):
        attempts.failed(error)
    assert noted == [] and attempts.failures == 0


def test_retry_after_is_capped_once_by_the_policy() -> None:
    policy = RetryPolicy(retry_after_max=10.0)
    assert policy.honoured(3600.0) == 10.0 and policy.honoured(-1.0) == 0.0
    assert Attempts(policy).failed(HubBusy("busy", 3600.0)) == 10.0


def test_poll_clock_narrows_the_gap_halving_while_it_is_wide() -> None:
    clock = PollPlanner(first_guess=0.05)
    assert clock.first_delay() == 0.05
    clock.record(JobTiming(lower=0.05, upper=1.05))  # polled early, then waited Retry-After 1
    assert clock.first_delay() == pytest.approx(1.05 - (0.5 - 0.05))
    clock.record(JobTiming(lower=0.0, upper=0.6))
    assert clock.first_delay() == pytest.approx(0.6 - (0.275 - 0.05))
    clock.record(JobTiming(lower=0.55, upper=1.55))  # too early: the span is narrow now
    assert clock.first_delay() == pytest.approx(0.6 * 1.05)  # so poll where jobs were done


@pytest.mark.parametrize("duration", [0.02, 0.3, 0.45, 2.0])
def test_poll_clock_settles_near_the_job_duration_with_few_early_polls(duration: float) -> None:
    clock = PollPlanner()
    early = 0
    for page in range(20):  # a hub answering Retry-After: 1 while the job runs
        delay = clock.first_delay()
        lower = 0.0
        while delay < duration:
            early += page > 0  # the first job is a guess: count what learning costs
            lower, delay = delay, delay + 1.0
        clock.record(JobTiming(lower=lower, upper=delay))
    assert early <= 3
    assert duration <= clock.first_delay() <= duration * 1.05 + 0.1


def test_a_short_retry_after_makes_early_polls_cheap() -> None:
    clock = PollPlanner()
    clock.retry_after = 0.1
    clock.record(JobTiming(lower=0.0, upper=0.4))
    assert clock.first_delay() == pytest.approx(0.4 - (0.2 - 0.005))


def test_poll_clock_starts_over_when_jobs_get_slower() -> None:
    clock = PollPlanner()
    clock.record(JobTiming(lower=0.0, upper=0.2))
    assert clock.first_delay() == pytest.approx(0.15)
    clock.record(JobTiming(lower=2.0, upper=3.0))  # does not fit below 0.2: a new regime
    assert clock.first_delay() == pytest.approx(3.0 - (0.5 - 0.05))


def test_poll_clock_waits_without_retry_after() -> None:
    waits = [PollPlanner.wait_without_retry_after(n) for n in range(1, 8)]
    assert waits == sorted(waits) and waits[-1] == 1.0 and waits[0] < 0.5
