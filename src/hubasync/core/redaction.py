"""Secrets taken out of text before it is shown: API keys, proxy credentials, tokens.

Everything hubasync prints, logs or records passes through :func:`redact` with the secrets the
run holds. Whatever the secrets, ``apikey=`` values in URLs and the values of ``Authorization``
and ``Proxy-Authorization`` headers are taken out.

A secret is redacted as a whole token, never as a part of a longer word: an occurrence of the
secret (or of one of its forms: URL-quoted with ``quote`` or ``quote_plus``, percent escapes in
either case, JSON-escaped) is replaced where it is not continued by a *word character* (a
Unicode letter, digit or ``_``) on either side. Everything else ends a token: spaces, quotes,
``= & ? # / + % , ; : . -`` and the like, and the start and end of the text. So a short key
such as ``a`` leaves ``hubasync`` alone, while ``token a``, ``apikey=a&``, ``"a"``, ``a,`` and
``Basic a`` lose it. An edge of the secret that is not a word character is a boundary by itself
(``p@ss!`` goes wherever it appears). If a replacement, or the text glued to it, spells a secret
again as a token, that spelling is removed until none is left.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Pattern, Tuple
from urllib.parse import quote, quote_plus

REDACTED = "REDACTED"
_APIKEY_VALUE_RE = re.compile(r"apikey=[^&#\s\"'<>]*", re.IGNORECASE)
# "Authorization: token K", "Proxy-Authorization: Basic K" (a header, or a header quoted in a
# message): the value after the scheme word goes, whatever the secrets.
_AUTHORIZATION_RE = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization\"?\s*[:=]\s*\"?)"
    r"(?:(?P<scheme>basic|bearer|token|digest)\s+)?"
    r"(?P<value>[^\s\"',;&]+)",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"\w")
_PERCENT_RE = re.compile(r"%[0-9A-F]{2}")


def redact(text: str, *secrets: str | None) -> str:
    """Text safe to print: ``apikey=...`` values, ``Authorization`` header values, and every
    occurrence of each secret as a token (the API key, a proxy's password and credential, in
    any of their forms) replaced by ``REDACTED``."""
    text = _APIKEY_VALUE_RE.sub(f"apikey={REDACTED}", text)
    text = _AUTHORIZATION_RE.sub(_authorization_redacted, text)
    wanted = tuple(sorted({s for s in secrets if s}))
    if not wanted:
        return text
    pattern = _pattern(wanted)
    text = pattern.sub(REDACTED, text)
    # The marker, or the marker and the text glued to it, may spell a secret again.
    while pattern.search(text):
        text = pattern.sub("", text)
    return text


def forms(secret: str) -> Tuple[str, ...]:
    """The spellings of ``secret`` that may reach a message: as is, URL-quoted (``quote`` with
    and without ``/`` kept, ``quote_plus``; escapes in upper or lower case), JSON-escaped."""
    found = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    for quoted in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        found.add(quoted)
        found.add(_PERCENT_RE.sub(lambda match: match[0].lower(), quoted))
    return tuple(sorted(found, key=len, reverse=True))


def is_word_character(char: str) -> bool:
    """Whether ``char`` continues a token (a Unicode letter, digit, or ``_``)."""
    return _WORD_RE.match(char) is not None


@functools.lru_cache(maxsize=32)
def _pattern(secrets: Tuple[str, ...]) -> Pattern[str]:
    """One regular expression matching every form of every secret as a token, longest first."""
    spellings = sorted({form for secret in secrets for form in forms(secret)},
                       key=len, reverse=True)
    return re.compile("|".join(_token(form) for form in spellings))


def _token(form: str) -> str:
    before = r"(?<!\w)" if is_word_character(form[0]) else ""
    after = r"(?!\w)" if is_word_character(form[-1]) else ""
    return before + re.escape(form) + after


def _authorization_redacted(match: re.Match[str]) -> str:
    scheme = f"{match['scheme']} " if match["scheme"] else ""
    return f"{match['name']}{scheme}{REDACTED}"


class Secret:
    """A secret string. ``reveal()`` gives it; ``str``/``repr`` never do."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> str:  # never pickled into a file or another process by mistake
        raise TypeError("a Secret is not pickled")
