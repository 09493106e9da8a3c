"""The async API's three phases as decisions: given an answer, what comes next.

No sockets here. Each ``after_*`` function takes the status, headers and (for errors) the
small body of one answer and returns what the client must do: poll a status URL, fetch a
results URL, read the results, retry the same request, or post the query again. Answers
that end the run raise the error that carries the right exit code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Optional, Union

from hubasync.core.retry import parse_retry_after
from hubasync.core.urls import resolve_location, same_origin
from hubasync.errors import (
    AuthError,
    BadBody,
    HubasyncError,
    NotFoundError,
    ProtocolError,
    QueryRejected,
)

HeaderGetter = Callable[[str], Optional[str]]

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    """What the client saw of one answer."""

    url: str  # the URL of the request that was answered
    status: int
    header: HeaderGetter
    body: bytes = b""  # only for answers whose body is small (errors, counts)


@dataclass(frozen=True)
class Poll:
    """The job is running: poll ``url`` after ``retry_after`` seconds (None: our choice)."""

    url: str
    retry_after: Optional[float]


@dataclass(frozen=True)
class Fetch:
    """The job is done: its results are at ``url``."""

    url: str


@dataclass(frozen=True)
class Read:
    """The results are coming: read the body."""

    next_token: Optional[str]
    last_inserted_token: Optional[str]


@dataclass(frozen=True)
class Retry:
    """A transient failure: make the same request again after a while."""

    reason: str
    retry_after: Optional[float] = None


@dataclass(frozen=True)
class Repost:
    """The job is gone (expired, vanished, results consumed): post the query again."""

    reason: str


PostOutcome = Union[Poll, Retry]
StatusOutcome = Union[Poll, Fetch, Retry, Repost]
ResultsOutcome = Union[Read, Retry, Repost]


def hub_reasons(body: bytes) -> list[tuple[str, str]]:
    """The ``(key, message)`` pairs of a hub error body, or [] if it has none."""
    try:
        document = json.loads(body.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return []
    if not isinstance(document, dict):
        return []
    reasons: list[tuple[str, str]] = []
    errors = document.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict):
                message = item.get("message") or item.get("type") or ""
                reasons.append((str(item.get("key") or ""), str(message)))
    if not reasons:
        text = document.get("description") or document.get("title") or document.get("message")
        if text:
            reasons.append(("", str(text)))
    return reasons


def hub_says(answer: Answer) -> str:
    """The hub's own words for an error answer, on one line, short."""
    reasons = hub_reasons(answer.body)
    if reasons:
        text = "; ".join(f"{key}: {msg}" if key else msg for key, msg in reasons)
    else:
        text = answer.body.decode("utf-8", "replace").strip()
        if text.startswith("<"):  # an HTML error page from a proxy says nothing useful
            text = ""
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _with_reason(prefix: str, answer: Answer) -> str:
    said = hub_says(answer)
    return f"{prefix}: {said}" if said else prefix


def _location(answer: Answer, what: str) -> Optional[str]:
    """The answer's Location resolved against the request URL, checked to stay on the origin."""
    value = answer.header("Location")
    if not value:
        return None
    url = resolve_location(answer.url, value)
    if not same_origin(url, answer.url):
        raise ProtocolError(f"the hub pointed the {what} to another origin, {url}: not followed")
    return url


def _retry_after(answer: Answer) -> Optional[float]:
    return parse_retry_after(answer.header("Retry-After"))


def _common(answer: Answer, phase: str) -> Optional[Retry]:
    """Answers that mean the same in every phase: auth errors raise, transient ones retry."""
    status = answer.status
    if status in (401, 403):
        raise AuthError(_with_reason(f"the hub refused the API key ({status})", answer))
    if status in TRANSIENT_STATUSES or 500 <= status <= 599:
        return Retry(f"{phase}: HTTP {status}", _retry_after(answer))
    return None


def _gone_or_failed(answer: Answer, phase: str, *, gone: str,
                    missing: str) -> Union[Repost, Retry, None]:
    """What 410, 404, 400 and the common statuses mean once a job exists."""
    if answer.status == 410:
        if (answer.header("X-STATUS") or "").lower() == "job expired":
            return Repost("job expired")
        return Repost(gone)
    if answer.status == 404:
        return Repost(missing)
    if answer.status == 400:
        raise QueryRejected("the hub rejected the query", hub_reasons(answer.body))
    return _common(answer, phase)


def _unexpected(answer: Answer, phase: str) -> HubasyncError:
    return ProtocolError(_with_reason(f"unexpected answer to the {phase}: HTTP {answer.status}",
                                      answer))


def after_post(answer: Answer) -> PostOutcome:
    """Decide on the answer to ``POST`` of a query."""
    if answer.status == 202:
        location = _location(answer, "job status")
        if location is None:
            return Retry("query: accepted without a Location")
        return Poll(location, _retry_after(answer))
    if answer.status == 400:
        raise QueryRejected("the hub rejected the query", hub_reasons(answer.body))
    if answer.status == 404:
        raise NotFoundError(_with_reason("share not found (404)", answer))
    retry = _common(answer, "query")
    if retry is not None:
        return retry
    if answer.status in (301, 302, 303, 307, 308):
        target = answer.header("Location") or "elsewhere"
        raise ProtocolError(f"the hub redirected the query to {target}; use that URL instead")
    raise _unexpected(answer, "query")


def after_status(answer: Answer) -> StatusOutcome:
    """Decide on the answer to ``GET`` of a job's status URL."""
    if answer.status == 202:
        return Poll(_location(answer, "job status") or answer.url, _retry_after(answer))
    if answer.status in (302, 303):
        location = _location(answer, "results")
        if location is None:
            return Retry("status: finished without a Location")
        return Fetch(location)
    outcome = _gone_or_failed(answer, "status", gone="job no longer exists",
                              missing="job not found")
    if outcome is not None:
        return outcome
    raise _unexpected(answer, "status request")


def after_results(answer: Answer) -> ResultsOutcome:
    """Decide on the status and headers of ``GET`` of a job's results URL."""
    if answer.status == 200:
        return Read(answer.header("X-Next-Token") or None,
                    answer.header("X-Last-Inserted-Token") or None)
    outcome = _gone_or_failed(answer, "results", gone="results already fetched",
                              missing="results not found")
    if outcome is not None:
        return outcome
    if answer.status == 202:
        return Retry("results: job not finished")
    raise _unexpected(answer, "results request")


def parse_count(body: bytes) -> int:
    """The N of a count result ``{"count": N}``."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise BadBody("count result is not JSON") from error
    count = document.get("count") if isinstance(document, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise BadBody("count result has no count")
    return count
