"""The three phases' decisions, answer by answer, without a network."""

from __future__ import annotations

import json

import pytest
from fakehub import answer

from hubasync.core.answers import (
    Fetch,
    Poll,
    Read,
    Repost,
    Retry,
    after_post,
    after_results,
    after_status,
    hub_reasons,
    parse_count,
)
from hubasync.core.retry import Attempts, RetryPolicy
from hubasync.errors import (
    AuthError,
    BadBody,
    HubasyncError,
    NotFoundError,
    ProtocolError,
    QueryRejected,
)

POST_URL = "https://hub.example.com/shares/v2/async/abc?limit=10"
STATUS_URL = "https://hub.example.com/shares/v2/async/abc/jobs/J1"
RESULTS_URL = "https://hub.example.com/shares/v2/async/abc/results/J1"

INVALID_INPUTS = json.dumps({
    "title": "400 Invalid input(s)", "description": "2 invalid input(s)",
    "errors": [
        {"key": "start", "type": "query validation", "message": "Invalid start: ['foo']"},
        {"key": "startt", "type": "query validation", "message": "Unknown parameter: startt"},
    ],
}).encode()
INVALID_TOKEN = json.dumps({
    "title": "400 Bad Request",
    "errors": [{"type": "storage", "key": "token", "message": "Invalid token: foo"}],
}).encode()


@pytest.mark.parametrize("location, expected", [
    ("/shares/v2/async/abc/jobs/J1", STATUS_URL),
    ("abc/jobs/J1", STATUS_URL),  # path-relative: resolved against the request URL
    (STATUS_URL, STATUS_URL),
])
def test_post_accepted_resolves_location(location: str, expected: str) -> None:
    outcome = after_post(answer(POST_URL, 202, Location=location))
    assert outcome == Poll(expected, None)


@pytest.mark.parametrize("status, headers, expected", [
    (429, {"Retry-After": "7"}, Retry("query: HTTP 429", 7.0)),
    (503, {"Retry-After": "2"}, Retry("query: HTTP 503", 2.0)),
    (500, {}, Retry("query: HTTP 500", None)),
    (502, {}, Retry("query: HTTP 502", None)),
    (504, {}, Retry("query: HTTP 504", None)),
    (202, {}, Retry("query: accepted without a Location")),
])
def test_post_transient(status: int, headers: dict[str, str], expected: Retry) -> None:
    assert after_post(answer(POST_URL, status, **headers)) == expected


def test_post_400_lists_each_reason() -> None:
    with pytest.raises(QueryRejected) as caught:
        after_post(answer(POST_URL, 400, INVALID_INPUTS))
    assert caught.value.reasons == [
        ("start", "Invalid start: ['foo']"), ("startt", "Unknown parameter: startt"),
    ]
    assert "startt: Unknown parameter: startt" in str(caught.value)
    assert caught.value.exit_code == 5


@pytest.mark.parametrize("status, error, code", [
    (401, AuthError, 3), (403, AuthError, 3), (404, NotFoundError, 4),
])
def test_post_permanent(status: int, error: type, code: int) -> None:
    body = b'{"title": "nope", "description": "the key was revoked"}'
    with pytest.raises(error) as caught:
        after_post(answer(POST_URL, status, body))
    assert caught.value.exit_code == code
    assert "the key was revoked" in str(caught.value)


def test_post_redirect_is_not_followed() -> None:
    with pytest.raises(ProtocolError, match="redirected"):
        after_post(answer(POST_URL, 301, Location="https://other.example/x"))


def test_location_to_another_origin_is_refused() -> None:
    with pytest.raises(ProtocolError, match="another origin"):
        after_post(answer(POST_URL, 202, Location="https://evil.example/jobs/J1"))
    with pytest.raises(ProtocolError, match="another origin"):
        after_status(answer(STATUS_URL, 302, Location="http://hub.example.com/r/J1"))
    with pytest.raises(ProtocolError, match="another origin"):
        after_status(answer(STATUS_URL, 302, Location="//evil.example/r/J1"))


@pytest.mark.parametrize("status, headers, expected", [
    (202, {"Location": "J1", "Retry-After": "1"}, Poll(STATUS_URL, 1.0)),
    (202, {}, Poll(STATUS_URL, None)),
    (302, {"Location": "../results/J1"}, Fetch(RESULTS_URL)),
    (302, {}, Retry("status: finished without a Location")),
    (303, {"Location": "../results/J1"}, Fetch(RESULTS_URL)),  # See Other: the same as 302
    (303, {"Location": RESULTS_URL}, Fetch(RESULTS_URL)),
    (303, {}, Retry("status: finished without a Location")),
    (410, {"X-STATUS": "Job expired"}, Repost("job expired")),
    (410, {}, Repost("job no longer exists")),
    (404, {}, Repost("job not found")),
    (502, {}, Retry("status: HTTP 502")),
    (503, {"Retry-After": "3"}, Retry("status: HTTP 503", 3.0)),
    (504, {}, Retry("status: HTTP 504")),
    (500, {}, Retry("status: HTTP 500")),
    (429, {}, Retry("status: HTTP 429")),
])
def test_status(status: int, headers: dict[str, str], expected: object) -> None:
    assert after_status(answer(STATUS_URL, status, **headers)) == expected


@pytest.mark.parametrize("status", [401, 403])
def test_status_auth(status: int) -> None:
    with pytest.raises(AuthError):
        after_status(answer(STATUS_URL, status))


@pytest.mark.parametrize("status, headers, expected", [
    (200, {"X-Next-Token": "T2", "X-Last-Inserted-Token": "L"}, Read("T2", "L")),
    (200, {}, Read(None, None)),
    (410, {}, Repost("results already fetched")),
    (410, {"X-Status": "Job expired"}, Repost("job expired")),
    (404, {}, Repost("results not found")),
    (502, {}, Retry("results: HTTP 502")),
    (503, {}, Retry("results: HTTP 503")),
    (504, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}, None),
])
def test_results(status: int, headers: dict[str, str], expected: object) -> None:
    outcome = after_results(answer(RESULTS_URL, status, **headers))
    if expected is None:  # an HTTP date far ahead: capped later, parsed here
        assert isinstance(outcome, Retry) and outcome.retry_after is not None
        assert outcome.retry_after > 1e8
    else:
        assert outcome == expected


def test_results_invalid_token() -> None:
    with pytest.raises(QueryRejected) as caught:
        after_results(answer(RESULTS_URL, 400, INVALID_TOKEN))
    assert caught.value.invalid_token
    assert "Invalid token: foo" in str(caught.value)


# The 4xx statuses each phase gives a meaning to (the rest are tested below, one by one):
# 400 rejected query, 401/403 refused key, 404 share or job not found, 410 job gone (once a
# job exists), 408/425/429 try again later.
MEANT_4XX = {
    "query": {400, 401, 403, 404, 408, 425, 429},
    "status request": {400, 401, 403, 404, 408, 410, 425, 429},
    "results request": {400, 401, 403, 404, 408, 410, 425, 429},
}
DECIDE = {"query": (after_post, POST_URL), "status request": (after_status, STATUS_URL),
          "results request": (after_results, RESULTS_URL)}
UNEXPECTED_4XX = [(phase, status) for phase in DECIDE for status in range(400, 500)
                  if status not in MEANT_4XX[phase]]


@pytest.mark.parametrize("phase, status", UNEXPECTED_4XX)
def test_an_unexpected_4xx_ends_the_run_at_once(phase: str, status: int) -> None:
    decide, url = DECIDE[phase]
    body = b'{"title": "not for you", "description": "the hub says why"}'
    with pytest.raises(ProtocolError) as caught:
        decide(answer(url, status, body, Retry_After="1", Location=url))
    error = caught.value
    assert str(error) == f"unexpected answer to the {phase}: HTTP {status}: the hub says why"
    assert error.exit_code == 6 and not error.transient
    noted: list[float] = []
    tries = Attempts(RetryPolicy(retries=5), on_retry=lambda reason, wait, n: noted.append(wait))
    with pytest.raises(ProtocolError):  # the one place retries are decided lets it through
        tries.failed(error)
    assert noted == [] and tries.failures == 0


@pytest.mark.parametrize("phase, status", [(phase, status) for phase in DECIDE
                                           for status in sorted(MEANT_4XX[phase])])
def test_the_4xx_left_out_above_have_a_meaning(phase: str, status: int) -> None:
    decide, url = DECIDE[phase]
    try:
        decide(answer(url, status, b'{"title": "t"}'))
    except ProtocolError as error:
        raise AssertionError(f"{status} to the {phase} has no meaning: {error}") from error
    except HubasyncError:
        pass


@pytest.mark.parametrize("body, expected", [
    (b'{"count": 12}', 12), (b' {"count":0}\n', 0),
])
def test_parse_count(body: bytes, expected: int) -> None:
    assert parse_count(body) == expected


@pytest.mark.parametrize("body", [
    b"", b"[]", b'{"count": -1}', b'{"count": "3"}', b'{"count": true}', b"{", b'{"n": 1}',
])
def test_parse_count_rejects(body: bytes) -> None:
    with pytest.raises(BadBody):
        parse_count(body)


@pytest.mark.parametrize("body, expected", [
    (INVALID_INPUTS, [("start", "Invalid start: ['foo']"),
                      ("startt", "Unknown parameter: startt")]),
    (b'{"title": "401 Unauthorized"}', [("", "401 Unauthorized")]),
    (b"<html>bad gateway</html>", []),
    (b"[1, 2]", []),
    (b'{"errors": ["odd"]}', []),
])
def test_hub_reasons(body: bytes, expected: list[tuple[str, str]]) -> None:
    assert hub_reasons(body) == expected
