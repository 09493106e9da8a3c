"""Query parameters: what the user asked for, as the ordered pairs a share query is posted with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Type
from urllib.parse import quote, urlencode

from hubasync.core.bounds import parse_duration
from hubasync.core.urls import ShareUrl
from hubasync.errors import UsageError

MAX_PAGE_LIMIT = 100_000
# Parameters never taken from --param, params= or a config's param table: the key goes in the
# Authorization header only, limit and token are set page by page, sort and reverse by their
# own options (and by the service itself).
RESERVED_PARAMS = ("sort", "reverse", "limit", "token", "apikey")


@dataclass(frozen=True)
class Query:
    """A query's parameters, except ``limit`` and ``token``, which the downloader sets per page.

    A field left at its default is not sent. ``extra`` holds ``--param KEY=VALUE`` pairs and the
    pasted URL's other parameters, sent as given.
    """

    start: str | None = None
    end: str | None = None
    filter: str | None = None
    projection: tuple[str, ...] = ()
    sort: str | None = None
    reverse: bool = False
    extra: tuple[tuple[str, str], ...] = ()

    def pairs(self, *, limit: int | None = None, token: str | None = None) -> list[tuple[str, str]]:
        """The given parameters in a fixed order, ``limit`` and ``token`` before ``extra``."""
        pairs: list[tuple[str, str]] = []
        for name, value in (("start", self.start), ("end", self.end), ("filter", self.filter)):
            if value is not None:
                pairs.append((name, value))
        pairs.extend(("projection", key) for key in self.projection)
        if self.sort is not None:
            pairs.append(("sort", self.sort))
        if self.reverse:
            pairs.append(("reverse", ""))
        if limit is not None:
            pairs.append(("limit", str(limit)))
        if token is not None:
            pairs.append(("token", token))
        pairs.extend(self.extra)
        return pairs

    def check_for(self, share: ShareUrl) -> None:
        """Refuse options a notification share does not take (it takes --limit and --token)."""
        if not share.is_notification:
            return
        given = {
            "--start": self.start is not None,
            "--end": self.end is not None,
            "--filter": self.filter is not None,
            "--projection": bool(self.projection),
            "--sort": self.sort is not None,
            "--reverse": self.reverse,
        }
        offending = [option for option, is_given in given.items() if is_given]
        if offending:
            raise UsageError(
                f"a notification share ({share.display()}) takes only --limit and --token "
                f"(and --param); drop {', '.join(offending)}"
            )


def relative_time(text: str) -> str:
    """A ``start``/``end`` value as the hub takes it: a duration with a unit (``24h``, ``-24h``,
    ``7d``, ``30m``, ``90s``; either sign) means that long before now, sent as the negative
    number of seconds (``-86400``); anything else (a date, a date-time, epoch seconds, a plain
    number <= 0 for seconds before now) is sent as it is."""
    body = text.strip()
    if body.startswith(("+", "-")):
        body = body[1:]
    if not body or not body[-1].isalpha():  # a plain number or a date: the hub reads it
        return text
    try:
        seconds = parse_duration(body)
    except ValueError:
        return text
    return str(-int(seconds)) if seconds == int(seconds) else str(-seconds)


def parse_projection(text: str) -> tuple[str, ...]:
    """Keys of a comma-separated --projection list: "feed, observation time" -> 2 keys."""
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    if not keys:
        raise UsageError(f"--projection names no keys: {text!r}; expected e.g. 'feed,type'")
    return keys


def reserved_param(key: str) -> str | None:
    """The reserved parameter ``key`` names (see :data:`RESERVED_PARAMS`), whatever its case and
    the spaces around it (``APIKEY``, `` Sort``); None when it names none."""
    name = key.strip().casefold()
    return name if name in RESERVED_PARAMS else None


def parse_param(text: str) -> tuple[str, str]:
    """A --param KEY=VALUE pair, split at the first '='."""
    key, equals, value = text.partition("=")
    name = reserved_param(key)
    if name == "apikey":
        raise UsageError(
            "--param apikey=... is refused: the key goes in the Authorization header only; "
            "give it with --apikey or the APIKEY environment variable"
        )
    if name is not None:
        how = "give --reverse" if name == "reverse" else f"give --{name}"
        raise UsageError(f"--param {key.strip()}=... is refused: {how} (the run sets {name} "
                         "itself)")
    if not equals:
        raise UsageError(f"--param takes KEY=VALUE; {text!r} has no '='")
    if not key.strip():
        raise UsageError(f"--param takes KEY=VALUE; the key is empty in {text!r}")
    return key, value


def encode_query(pairs: list[tuple[str, str]]) -> str:
    """Query text for the pairs, spaces as %20; "" for no pairs."""
    return urlencode(pairs, quote_via=quote)


def query_url(share: ShareUrl, query: Query, *, limit: int | None = None,
              token: str | None = None) -> str:
    """The URL a query is posted to: the share's async URL and the given parameters only."""
    text = encode_query(query.pairs(limit=limit, token=token))
    return share.post_url + ("?" + text if text else "")


def check_sendable(name: str, value: str, error: Type[UsageError] = UsageError) -> None:
    """Refuse text that cannot be sent in a URL: lone surrogates, as Python makes of argument
    bytes that are not valid in the locale's encoding."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name}: holds bytes or characters that cannot be encoded as UTF-8 "
                    "(check the terminal's or the script's encoding)") from None
