"""Redaction: a secret goes wherever it stands as a token, and nothing else is touched."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hubasync.core.redaction import REDACTED, forms, redact


def token_occurrences(text: str, secret: str) -> list[int]:
    """Where ``secret`` stands in ``text`` with no letter, digit or _ continuing it: written
    apart from the module's regular expression, with str methods."""

    def word(char: str) -> bool:
        return char.isalnum() or char == "_" or re.match(r"\w", char) is not None

    found = []
    start = text.find(secret)
    while start != -1:
        end = start + len(secret)
        left_ok = start == 0 or not word(secret[0]) or not word(text[start - 1])
        right_ok = end == len(text) or not word(secret[-1]) or not word(text[end])
        if left_ok and right_ok:
            found.append(start)
        start = text.find(secret, start + 1)
    return found


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("hubasync a", ("a",), f"hubasync {REDACTED}"),
        ("hubasync sync k1 k10 xk1", ("k1",), f"hubasync sync {REDACTED} k10 xk1"),
        ("Authorization: token K3y", ("K3y",), f"Authorization: token {REDACTED}"),
        ("?apikey=K3y&x=1", ("K3y",), f"?apikey={REDACTED}&x=1"),
        ("?x=K3y&y=1", ("K3y",), f"?x={REDACTED}&y=1"),
        ('{"key": "K3y"}', ("K3y",), f'{{"key": "{REDACTED}"}}'),
        ("bad key K3y, again K3y.", ("K3y",), f"bad key {REDACTED}, again {REDACTED}."),
        ("p@ss/word quoted p%40ss%2Fword plus p%40ss%2fword", ("p@ss/word",),
         f"{REDACTED} quoted {REDACTED} plus {REDACTED}"),
        ("a b / a+b / a%20b", ("a b",), f"{REDACTED} / {REDACTED} / {REDACTED}"),
        ('json "q\\"uote"', ('q"uote',), f'json "{REDACTED}"'),
        ('"p\\u00e4\\"ss" "p\u00e4\\"ss"', ('p\u00e4"ss',), f'"{REDACTED}" "{REDACTED}"'),
        ("key-K3y-1 K3y-1.", ("K3y-1",), f"key-{REDACTED} {REDACTED}."),
        ("Basic dTpwdw== there", (base64.b64encode(b"u:pw").decode(),),
         f"Basic {REDACTED} there"),
        # the marker glued to the text around it spells the secret again: it goes too
        ("RED", ("RED",), REDACTED),
        ("--REDACTED", ("-REDACTED",), ""),
        ("x REDACTED y", ("REDACTED",), "x  y"),
        # whatever the secrets: header values and apikey= values
        ("Proxy-Authorization: Basic Zm9v", (), f"Proxy-Authorization: Basic {REDACTED}"),
        ('"Authorization": "token abc"', (), f'"Authorization": "token {REDACTED}"'),
        ("the Authorization header only", (), "the Authorization header only"),
        ("nothing here", ("", None), "nothing here"),
    ],
)
def test_redact(text: str, secrets: tuple[str | None, ...], expected: str) -> None:
    assert redact(text, *secrets) == expected


def test_a_short_key_garbles_no_word() -> None:
    message = 'hubasync: share "cust42" failed: hub answered 503 (Service Unavailable)'
    for key in ("a", "k1", "s", "ub", "503x", "42"[:1]):
        assert redact(message, key) == message


def test_forms_are_those_a_hub_may_echo() -> None:
    assert {"a/b c", "a%2Fb%20c", "a/b%20c", "a%2Fb+c", "a%2fb%20c"} <= set(
        forms("a/b c"))
    assert 'q\\"u' in forms('q"u')


# Property tests.

KEY_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))
keys = st.text(KEY_ALPHABET, min_size=1, max_size=24)
ascii_keys = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=",
                     min_size=1, max_size=24)
DELIMITERS = st.sampled_from(["", " ", "=", "&", '"', "'", ",", ":", "/", "\n", "\t", "(", ")",
                              "?apikey=", "token ", "Basic ", "%", "+", "-", "."])
# text around a secret: anything, with the marker's pieces (a hub may glue the key to them)
around = st.lists(st.one_of(st.text(KEY_ALPHABET, max_size=3),
                            st.sampled_from(["RED", "ACTED", "REDACTED", "D"])),
                  max_size=8).map("".join)


def _assert_gone(out: str, secret: str) -> None:
    for form in forms(secret):
        assert token_occurrences(out, form) == [], (out, form)


@given(keys, around, DELIMITERS, DELIMITERS, around)
def test_the_secret_never_survives_as_a_token(secret: str, left: str, before: str, after: str,
                                              right: str) -> None:
    out = redact(f"{left}{before}{secret}{after}{right}", secret)
    _assert_gone(out, secret)


@given(ascii_keys, st.lists(st.sampled_from(["", "quote", "plus", "json"]), min_size=1,
                            max_size=3), around)
def test_every_form_of_the_secret_goes(secret: str, how: list[str], right: str) -> None:
    spell = {"": lambda s: s, "quote": lambda s: quote(s, safe=""),
             "plus": lambda s: quote_plus(s), "json": lambda s: json.dumps(s)[1:-1]}
    text = " ".join(spell[name](secret) for name in how) + " " + right
    _assert_gone(redact(text, secret), secret)


@given(keys, keys, around)
def test_several_secrets_all_go(first: str, second: str, right: str) -> None:
    out = redact(f"{first} {second} {right} {second}:{first}", first, second)
    _assert_gone(out, first)
    _assert_gone(out, second)


words = st.text("abcdefghijklmnopqrstuvwxyzABC0123456789_", min_size=1, max_size=10)
separators = st.sampled_from([" ", ", ", ": ", "=", "&", "/", "\n", '"', "."])


@given(words, st.lists(st.tuples(words, separators), max_size=12))
def test_text_without_the_secret_as_a_token_is_unchanged(secret: str,
                                                         parts: list[tuple[str, str]]) -> None:
    text = "".join(word + sep for word, sep in parts)
    assume(all(not token_occurrences(text, form) for form in forms(secret)))
    assume(redact(text) == text)  # no apikey= or Authorization: in it
    assert redact(text, secret) == text


@given(st.text(max_size=40), keys)
def test_text_without_the_secret_at_all_is_unchanged(text: str, secret: str) -> None:
    assume(not any(form in text for form in forms(secret)))
    assume(redact(text) == text)
    assert redact(text, secret) == text


@given(words, words, words)
def test_a_secret_inside_a_longer_word_is_left_alone(secret: str, left: str, right: str) -> None:
    text = f"say {left}{secret}{right} now"
    assume(not token_occurrences(text, secret))
    assert redact(text, secret) == text
