"""Error types of hubasync, each carrying the exit code the command line ends with.

Every failure a user can meet is one of these; the CLI prints ``str(error)`` as one line on
stderr and exits with ``error.exit_code``. Whether a failure is worth another attempt is a
property of the error itself (``transient``), decided here once: the run loop retries exactly
the transient ones, after ``retry_after`` seconds when the hub said how long.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence


class ExitCode:
    """The documented exit codes of the ``hubasync`` command."""

    OK = 0
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    REJECTED = 5
    UNAVAILABLE = 6
    OUTPUT = 7
    BUSY = 75  # EX_TEMPFAIL from sysexits.h: try again later
    INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters turned into single spaces.

    Messages quote the hub's own words; flattened, they cannot add lines to stderr (where the
    last line is the continuation token).
    """
    return " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).split())


class HubasyncError(Exception):
    """Base class of every error hubasync raises on purpose; its text is always one line."""

    exit_code = 1
    transient = False  # True: the same work may succeed if tried again
    retry_after: Optional[float] = None  # seconds the hub asked to wait, if it said

    def __str__(self) -> str:
        return one_line(super().__str__())


class UsageError(HubasyncError):
    """A bad option, URL or configuration, found before any request is made."""

    exit_code = ExitCode.USAGE


class ClaimError(UsageError):
    """A file this run would write belongs to another command (a state of another URL, query or
    output), or is already there with nothing saying this run wrote it: nothing is replaced."""


class ProxyAuthError(HubasyncError):
    """The HTTP proxy refused the credentials, or wants some (407): a configuration error,
    not retried."""

    exit_code = ExitCode.USAGE


class InvalidArgument(UsageError, ValueError):
    """A library argument with a wrong value; the message names the argument."""


class InvalidArgumentType(UsageError, TypeError):
    """A library argument of a wrong type; the message names the argument."""


class AuthError(HubasyncError):
    """The hub refused the API key (401 or 403)."""

    exit_code = ExitCode.AUTH


class NotFoundError(HubasyncError):
    """The share does not exist (404 on the query)."""

    exit_code = ExitCode.NOT_FOUND


class QueryRejected(HubasyncError):
    """The hub rejected the query (400): invalid inputs or an invalid token.

    ``reasons`` holds one ``(key, message)`` pair per input the hub named.
    """

    exit_code = ExitCode.REJECTED

    def __init__(self, message: str, reasons: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.reasons = list(reasons)

    @property
    def invalid_token(self) -> bool:
        """True when the hub said the continuation token cannot be used."""
        return any(key == "token" for key, _ in self.reasons)

    def __str__(self) -> str:
        text = super().__str__()
        if self.reasons:
            text += ": " + "; ".join(f"{key}: {msg}" if key else msg for key, msg in self.reasons)
        return one_line(text)


class HubUnavailable(HubasyncError):
    """The hub or the network failed, and kept failing beyond the retries."""

    exit_code = ExitCode.UNAVAILABLE


class NetworkError(HubUnavailable):
    """A connection was refused, reset, dropped or timed out. Transient."""

    transient = True


class HubBusy(HubUnavailable):
    """The hub answered that it cannot serve now (429, 5xx, a job not ready). Transient."""

    transient = True

    def __init__(self, message: str, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobGone(HubUnavailable):
    """The job expired or vanished, or its results were already fetched: post it again."""

    transient = True


class JobTimeout(HubUnavailable):
    """The hub kept a job pending for longer than ``--job-timeout``: not retried."""


class PageTimeout(HubUnavailable):
    """A page's body took longer than ``--page-timeout`` to arrive: not retried."""


class CertificateError(HubUnavailable):
    """The hub's TLS certificate is not trusted: not transient, so not retried."""


class HostNotFound(HubUnavailable):
    """The hub's (or the proxy's) host name does not exist: not retried, since asking again
    gets the same answer. A resolver that fails for now (``EAI_AGAIN``) is a
    :class:`NetworkError` instead."""


class TlsMismatch(HubUnavailable):
    """The two ends do not speak the same protocol: https to a port that speaks plain http or
    the reverse, or no TLS version in common. Not retried."""


class BadBody(HubUnavailable):
    """A response body was cut short, was not valid gzip, or was not the JSON expected.

    Transient: the query is posted again, since results can be fetched only once.
    """

    transient = True


class BodyTooLarge(HubUnavailable):
    """A results body beyond a bound: an event larger than ``--max-event-size``, a longer run
    of whitespace between events, or an event nested too deep.

    Not transient: the query is not posted again, since the hub would send the same again.
    """

    transient = False


class ProtocolError(HubUnavailable):
    """The hub answered something the protocol does not allow (e.g. a foreign Location)."""


class NoProgress(ProtocolError):
    """The hub's pages do not move the run forward: a token repeats, or pages never end."""


class OutputError(HubasyncError):
    """The output could not be written (full disk, closed pipe, unwritable path)."""

    exit_code = ExitCode.OUTPUT


class Busy(HubasyncError):
    """Another hubasync process holds the lock on a file this run would write."""

    exit_code = ExitCode.BUSY


class Interrupted(HubasyncError):
    """The run was stopped by SIGINT, SIGTERM or SIGHUP."""

    exit_code = ExitCode.INTERRUPTED


class DeliveryError(HubasyncError):
    """A destination (syslog, RELP, Splunk HEC, Kafka) failed to take a batch.

    ``outcome`` is what the batch reached before the failure (a
    :class:`hubasync.delivery.records.Outcome`): its acknowledged prefix is kept by the caller,
    the rest is delivered again later. Connection refused, reset or timed out, and a receiver
    that said "busy", are transient; a refused certificate, or an answer the protocol does not
    allow, is not. Exit code 6 once the retries are spent.
    """

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, transient: bool, outcome: Any = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.outcome = outcome  # an Outcome; typed loosely so that errors imports nothing
        self.retry_after = retry_after
