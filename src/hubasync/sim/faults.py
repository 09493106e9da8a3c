"""Faults on demand, as data: what each fault does (phase, status, headers, body, job), and
which request misbehaves (the counted and random modes)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Phases a fault can spoil. ``any`` acts after a normal answer of any phase; ``auth`` is the
# key check of a request that carries the right key.
PHASES = ("post", "status", "results", "any", "auth")

# Header modes.
RETRY_AFTER = "retry-after"            # Retry-After in seconds (--retry-after)
RETRY_AFTER_DATE = "retry-after-date"  # Retry-After as an HTTP date a second ahead
NO_RETRY_AFTER = "no-retry-after"      # a 202 without Retry-After
X_STATUS_EXPIRED = "x-status-expired"  # X-STATUS: Job expired
CHUNKED = "chunked"                    # Transfer-Encoding: chunked instead of Content-Length

# Body modes. The first group replaces the whole answer; the rest shape a results body.
NORMAL = "normal"               # the answer the request deserved
ERROR_JSON = "error-json"       # the hub's JSON error body {"title", "description"}
PROXY_HTML = "proxy-html"       # a proxy's HTML error page
DROP = "drop"                   # no answer: the connection is closed (FIN)
RESET = "reset"                 # no answer: the connection is reset (RST)
ECHO_KEY = "echo-key"           # a JSON 401 body quoting the key the request sent
HALF_FIN = "half-fin"           # full Content-Length, half the body, FIN
HALF_RESET = "half-reset"       # half the body, RST
HALF_STALL = "half-stall"       # half the body, fault_delay of silence, FIN
BAD_GZIP = "bad-gzip"           # the gzip stream damaged midway
BAD_JSON = "bad-json"           # valid encoding of JSON cut midway
EMPTY = "empty"                 # a 200 with no body at all
TRICKLE = "trickle"             # the body in small pieces over fault_delay seconds
IDENTITY = "identity"           # no gzip although it was asked for
TRICKLE_FOREVER = "trickle-forever"  # "[" and the first event, then a space every fault_delay
BOMB_STRING = "bomb-string"     # gzip bombs (see bombs.py)
BOMB_WHITESPACE = "bomb-whitespace"
BOMB_NESTING = "bomb-nesting"

# Token modes of a results page (X-Next-Token).
SAME_TOKEN = "same-token"       # the token the query was posted with (or one naming the start)
TOKEN_CYCLE = "token-cycle"     # the token of the page before the query's own page
FRESH_EMPTY = "fresh-empty"     # an empty page with a fresh token at the same place, forever
FRESH_REPEAT = "fresh-repeat"   # the same events with a fresh token at the same place, forever
MORE_EVENTS = "more-events"     # one event more than the query's limit

# Effects on the job.
KEEP = "keep"                   # untouched: a transient answer, the results stay fetchable
CONSUME = "consume"             # the results count as fetched (the client must post again)
REMOVE = "remove"               # the job vanishes (404 from now on)
STALE = "stale"                 # the job goes stale (410 without X-STATUS from now on)
EXPIRE = "expire"               # the job expires (410 + X-STATUS from now on)
PIN_PENDING = "pin-pending"     # the job never finishes: every status answer is 202


@dataclass(frozen=True)
class Fault:
    """A way to misbehave: in which phase, with which answer, and what it does to the job.

    ``status`` None keeps the status the request deserved. ``message`` is the description of a
    JSON error body. ``close`` closes the kept-alive connection after a normal answer.
    ``gzip_only`` faults fire only on requests that accept gzip. ``hostile`` faults are those a
    client must defend against rather than recover from: the random mode draws them only when
    named.
    """

    name: str
    phase: str
    help: str
    status: Optional[int] = None
    headers: Tuple[str, ...] = ()
    body: str = NORMAL
    message: str = ""
    job: str = KEEP
    tokens: str = ""
    delay: bool = False
    close: bool = False
    gzip_only: bool = False
    hostile: bool = False


def _transient(phase: str, more: str = "") -> List[Fault]:
    retry = (RETRY_AFTER,)
    return [
        Fault(f"{phase}-502", phase, "502 from a proxy (HTML body)" + more, 502, body=PROXY_HTML),
        Fault(f"{phase}-503", phase, "503 with Retry-After" + more, 503, retry, ERROR_JSON,
              "Service temporarily unavailable"),
        Fault(f"{phase}-504", phase, "504 gateway timeout from a proxy (HTML body)" + more, 504,
              body=PROXY_HTML),
        Fault(f"{phase}-500", phase, "500 server error" + more, 500, body=ERROR_JSON,
              message="Internal error"),
        Fault(f"{phase}-429", phase, "429 rate limited, with Retry-After" + more, 429, retry,
              ERROR_JSON, "Rate limit exceeded"),
    ]


def _order(faults: List[Fault], names: Sequence[str]) -> List[Fault]:
    by_name = {f.name: f for f in faults}
    return [by_name[n] for n in names]


_KEPT = "; the results stay fetchable"

_POST = _order(_transient("post") + [
    Fault("post-503-date", "post", "503 with Retry-After as an HTTP date (a second ahead)", 503,
          (RETRY_AFTER_DATE,), ERROR_JSON, "Service temporarily unavailable"),
    Fault("post-drop", "post", "closes the connection without answering", body=DROP),
    Fault("post-reset", "post", "resets the connection (RST) without answering", body=RESET),
    Fault("post-slow", "post", "waits fault_delay seconds before answering", delay=True),
], ("post-503", "post-503-date", "post-429", "post-500", "post-502", "post-drop", "post-reset",
    "post-slow"))

_STATUS = _order(_transient("status") + [
    Fault("status-404", "status", "404: the job vanished (it is forgotten)", 404,
          body=ERROR_JSON, message="Job not found", job=REMOVE),
    Fault("status-410", "status", "410 without X-STATUS: the job went stale (it stays stale)",
          410, body=ERROR_JSON, message="Job no longer exists", job=STALE),
    Fault("status-expired", "status", "410 with X-STATUS: Job expired (the job stays expired)",
          410, (X_STATUS_EXPIRED,), ERROR_JSON, "Job expired", job=EXPIRE),
    Fault("status-no-retry-after", "status", "202 'not done yet' without Retry-After, even if done",
          202, (NO_RETRY_AFTER,)),
    Fault("status-retry-after-date", "status",
          "202 'not done yet' with Retry-After as an HTTP date", 202, (RETRY_AFTER_DATE,)),
    Fault("status-drop", "status", "closes the connection without answering", body=DROP),
    Fault("status-reset", "status", "resets the connection (RST) without answering", body=RESET),
    Fault("status-slow", "status", "waits fault_delay seconds before answering", delay=True),
], ("status-502", "status-503", "status-504", "status-500", "status-429", "status-404",
    "status-410", "status-expired", "status-no-retry-after", "status-retry-after-date",
    "status-drop", "status-reset", "status-slow"))

_RESULTS = _transient("results", _KEPT) + [
    Fault("results-404", "results", "404: the job vanished (it is forgotten)", 404,
          body=ERROR_JSON, message="Job not found", job=REMOVE),
    Fault("results-410", "results", "410: already fetched (the job is consumed)", 410,
          body=ERROR_JSON, message="Results already fetched", job=CONSUME),
    Fault("results-expired", "results", "410 with X-STATUS: Job expired (the job stays expired)",
          410, (X_STATUS_EXPIRED,), ERROR_JSON, "Job expired", job=EXPIRE),
    Fault("results-truncated", "results", "full Content-Length, half the body, then close (FIN)",
          body=HALF_FIN, job=CONSUME),
    Fault("results-reset", "results", "half the body, then a connection reset (RST)",
          body=HALF_RESET, job=CONSUME),
    Fault("results-stall", "results", "half the body, then silence for fault_delay s, then close",
          body=HALF_STALL, job=CONSUME),
    Fault("results-bad-gzip", "results", "the gzip stream is corrupted midway (gzip requests only)",
          body=BAD_GZIP, job=CONSUME, gzip_only=True),
    Fault("results-bad-json", "results",
          "valid gzip (if asked) of invalid JSON: the array cut midway", body=BAD_JSON,
          job=CONSUME),
    Fault("results-empty", "results", "200 with an empty body", body=EMPTY, job=CONSUME),
    Fault("results-slow", "results", "waits fault_delay seconds before the first byte",
          job=CONSUME, delay=True),
    Fault("results-trickle", "results", "the body in tiny pieces, spread over fault_delay seconds",
          body=TRICKLE, job=CONSUME),
    Fault("results-chunked", "results", "Transfer-Encoding: chunked instead of Content-Length",
          headers=(CHUNKED,), job=CONSUME),
    Fault("results-no-gzip", "results", "identity despite Accept-Encoding: gzip, like some proxies",
          body=IDENTITY, job=CONSUME, gzip_only=True),
    Fault("results-drop", "results", "closes the connection without answering", body=DROP,
          job=CONSUME),
]

_ANY = [
    Fault("keepalive-drop", "any", "answers, then closes the kept-alive connection silently",
          close=True),
]

_BOMB = "a few MB of gzip (whatever was asked) inflating to over 1 GiB: "
_HOSTILE = [
    Fault("status-pending-forever", "status",
          "the job never finishes: every status answer of it is 202 with Retry-After", 202,
          (RETRY_AFTER,), job=PIN_PENDING, hostile=True),
    Fault("status-303", "status", "the job-done answer is 303 (See Other) instead of 302", 303,
          hostile=True),
    Fault("results-trickle-forever", "results",
          "200 chunked: '[' and an event, then a space every fault_delay s, until the client "
          "goes away", headers=(CHUNKED,), body=TRICKLE_FOREVER, job=CONSUME, hostile=True),
    Fault("results-same-token", "results",
          "X-Next-Token is the token the query was posted with (or one naming the start)",
          job=CONSUME, tokens=SAME_TOKEN, hostile=True),
    Fault("results-token-cycle", "results",
          "from the third page on, X-Next-Token leads back to the previous page's token",
          job=CONSUME, tokens=TOKEN_CYCLE, hostile=True),
    Fault("results-endless-empty", "results", "[] with a fresh X-Next-Token every time",
          job=CONSUME, tokens=FRESH_EMPTY, hostile=True),
    Fault("results-endless-repeat", "results",
          "the same events again with a fresh X-Next-Token every time", job=CONSUME,
          tokens=FRESH_REPEAT, hostile=True),
    Fault("results-more-events", "results", "the page holds one event more than limit asked for",
          job=CONSUME, tokens=MORE_EVENTS, hostile=True),
    Fault("results-gzip-bomb-string", "results", _BOMB + "one event, one enormous string",
          body=BOMB_STRING, job=CONSUME, hostile=True),
    Fault("results-gzip-bomb-whitespace", "results",
          _BOMB + "a valid event, then an enormous run of whitespace", body=BOMB_WHITESPACE,
          job=CONSUME, hostile=True),
    Fault("results-gzip-bomb-nesting", "results", _BOMB + "one event nesting [[[[... enormously",
          body=BOMB_NESTING, job=CONSUME, hostile=True),
    Fault("auth-echo-key", "auth", "401 whose JSON body quotes the key the request sent", 401,
          body=ECHO_KEY, hostile=True),
]

# FAULTS: what a correct client recovers from (the e2e fault matrix runs each of them).
# HOSTILE_FAULTS: what it must defend against. ALL_FAULTS: both, as --list-faults shows them.
FAULTS: Dict[str, Fault] = {f.name: f for f in _POST + _STATUS + _RESULTS + _ANY}
HOSTILE_FAULTS: Dict[str, Fault] = {f.name: f for f in _HOSTILE}
ALL_FAULTS: Dict[str, Fault] = {**FAULTS, **HOSTILE_FAULTS}


@dataclass
class _Left:
    fault: Fault
    left: int


def parse_spec(spec: str) -> Tuple[str, int]:
    """``NAME[:COUNT]`` as (name, count); COUNT defaults to 1. Raises ValueError."""
    name, sep, count_text = spec.strip().partition(":")
    if name not in ALL_FAULTS:
        raise ValueError(f"unknown fault {name!r} (known: {', '.join(ALL_FAULTS)})")
    if not sep:
        return name, 1
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(f"bad fault count in {spec!r}") from None
    if count < 0:
        raise ValueError(f"bad fault count in {spec!r}")
    return name, count


class FaultPlan:
    """Decides, for each request that would succeed, whether (and how) it misbehaves.

    Counted mode: each ``NAME:COUNT`` spoils the first COUNT chances of its phase; several faults
    of a phase take their turns in the order given. Random mode (``rate > 0``): every chance
    misbehaves with probability ``rate``, with a fault drawn from the named ones (all but the
    hostile ones when none are named), from a generator seeded with ``seed``.
    """

    def __init__(self, specs: Sequence[str] = (), rate: float = 0.0, seed: int = 0) -> None:
        self._counted: List[_Left] = []
        for spec in specs:
            name, count = parse_spec(spec)
            self._counted.append(_Left(ALL_FAULTS[name], count))
        self.rate = rate
        named = list(dict.fromkeys(c.fault for c in self._counted))
        self._pool = named or list(FAULTS.values())
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def draw(self, phase: str, usable: Callable[[Fault], bool] = lambda fault: True
             ) -> Optional[Fault]:
        """The fault for this chance of ``phase``, or None to behave."""
        with self._lock:
            if self.rate > 0:
                choices = [f for f in self._pool if f.phase == phase and usable(f)]
                if not choices or self._rng.random() >= self.rate:
                    return None
                return self._rng.choice(choices)
            for entry in self._counted:
                if entry.left > 0 and entry.fault.phase == phase and usable(entry.fault):
                    entry.left -= 1
                    return entry.fault
            return None

    def pending(self) -> Dict[str, int]:
        """Counted faults not yet fired."""
        with self._lock:
            out: Dict[str, int] = {}
            for entry in self._counted:
                out[entry.fault.name] = out.get(entry.fault.name, 0) + entry.left
            return out
