"""Query parameters of the hub, validated the hub's way, and the filter rule-language subset.

Pure functions only: no sockets, no clocks (``now`` is passed in), so all of it is unit-testable.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from .times import parse_time_param

MAX_LIMIT = 100_000
API_PARAMS = ("start", "end", "filter", "projection", "sort", "reverse", "limit", "token")
NOTIFICATION_PARAMS = ("limit", "token")
SORT_ID = "_id"
SORT_TIME = "time"
_SORT_NAMES = {"_id": SORT_ID, "time": SORT_TIME, "observation time": SORT_TIME}
_TRUE = ("", "1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

Event = Dict[str, Any]
Predicate = Callable[[Event], bool]


class InvalidInputs(Exception):
    """The 400 "Invalid input(s)" answer: one error per bad parameter."""

    def __init__(self, errors: List[Dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} invalid input(s)")
        self.errors = errors

    def body(self) -> Dict[str, Any]:
        """The JSON body the hub answers with."""
        return {
            "title": "400 Invalid input(s)",
            "description": f"{len(self.errors)} invalid input(s)",
            "errors": self.errors,
        }


def _error(key: str, message: str) -> Dict[str, str]:
    return {"key": key, "type": "query validation", "message": message}


class FilterError(ValueError):
    """A filter expression outside the supported subset of the rule language."""


@dataclass(frozen=True)
class Filter:
    """A compiled filter: the predicate, and byte strings any matching event must contain."""

    text: str
    predicate: Predicate
    needles: FrozenSet[bytes]

    def __call__(self, event: Event) -> bool:
        return self.predicate(event)


@dataclass(frozen=True)
class Query:
    """One validated query. Times are resolved to epoch seconds: ``start <= t < end``."""

    count: bool = False
    start: Optional[int] = None
    end: Optional[int] = None
    filter: Optional[Filter] = None
    projection: Optional[Tuple[str, ...]] = None
    sort: str = SORT_TIME
    reverse: bool = False
    limit: Optional[int] = None
    token: Optional[str] = None

    def key(self) -> Tuple[Any, ...]:
        """A hashable identity of the query (for the page cache)."""
        return (
            self.count, self.start, self.end, self.filter.text if self.filter else None,
            self.projection, self.sort, self.reverse, self.limit, self.token,
        )


def parse_query(
    params: Sequence[Tuple[str, str]], *, now: float, notification: bool = False,
    count: bool = False, ignore: Sequence[str] = (),
) -> Query:
    """Validate a query string's parameters (in order, repeats kept) into a Query.

    Raises InvalidInputs listing every bad parameter. ``ignore`` names parameters to skip
    (``apikey`` on the sync API).
    """
    allowed = NOTIFICATION_PARAMS if notification else API_PARAMS
    values: Dict[str, List[str]] = {}
    errors: List[Dict[str, str]] = []
    for name, value in params:
        if name in ignore:
            continue
        if name not in allowed:
            if not any(e["key"] == name for e in errors):
                errors.append(_error(name, f"Unknown parameter: {name}"))
            continue
        values.setdefault(name, []).append(value)

    def single(name: str) -> Optional[str]:
        got = values.get(name)
        if got is None:
            return None
        if len(got) != 1:
            errors.append(_error(name, f"Invalid {name}: {got!r}"))
            return None
        return got[0]

    fields: Dict[str, Any] = {"count": count}
    for name in ("start", "end"):
        text = single(name)
        if text is not None:
            when = parse_time_param(text, now)
            if when is None:
                errors.append(_error(name, f"Invalid {name}: {[text]!r}"))
            else:
                fields[name] = math.ceil(when)
    text = single("filter")
    if text is not None:
        try:
            fields["filter"] = compile_filter(text)
        except FilterError as exc:
            errors.append(_error("filter", f"Invalid filter: {[text]!r}: {exc}"))
    if "projection" in values:
        keys = values["projection"]
        if any(not key for key in keys):
            errors.append(_error("projection", f"Invalid projection: {keys!r}"))
        else:
            fields["projection"] = tuple(dict.fromkeys(keys))
    text = single("sort")
    if text is not None:
        if text in _SORT_NAMES:
            fields["sort"] = _SORT_NAMES[text]
        else:
            errors.append(_error("sort", f"Invalid sort: {[text]!r}"))
    text = single("reverse")
    if text is not None:
        if text.lower() in _TRUE:
            fields["reverse"] = True
        elif text.lower() not in _FALSE:
            errors.append(_error("reverse", f"Invalid reverse: {[text]!r}"))
    text = single("limit")
    if text is not None:
        if re.fullmatch(r"\+?\d{1,7}", text.strip()) and 1 <= int(text) <= MAX_LIMIT:
            fields["limit"] = int(text)
        else:
            errors.append(_error("limit", f"Invalid limit: {[text]!r}"))
    text = single("token")
    if text is not None:
        if text:
            fields["token"] = text
        else:
            errors.append(_error("token", f"Invalid token: {[text]!r}"))
    if notification:
        fields["sort"] = SORT_ID
    if errors:
        raise InvalidInputs(errors)
    return Query(**fields)


# ---------------------------------------------------------------------------------------------
# The filter language: a documented subset of the hub's rule language.
#
#   expr    := or
#   or      := and ("OR" and)*
#   and     := unary ("AND" unary)*
#   unary   := "NOT" unary | "(" expr ")" | compare
#   compare := key ("=" | "!=") value
#   key, value := bare word | "double-quoted" | 'single-quoted'   (backslash escapes in quotes)
#
# Keywords are case-insensitive. ``key=value`` holds when the attribute equals the value, or
# for a list attribute, when one of its values does; ``!=`` is its negation (a missing
# attribute is != anything). ``key=*`` holds when the attribute is present.
# ---------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s*(?:(?P<op>!=|=|\(|\))|"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'"""
    r"""|(?P<word>[^\s()!="']+))"""
)
_ESCAPE_RE = re.compile(r"\\(.)")


def _tokenize(text: str) -> List[Tuple[str, str]]:
    tokens: List[Tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FilterError(f"unexpected {text[pos:].strip()[:20]!r}")
        pos = m.end()
        if m.group("op") is not None:
            tokens.append(("op", m.group("op")))
        elif m.group("word") is not None:
            word = m.group("word")
            kind = "kw" if word.upper() in ("AND", "OR", "NOT") else "str"
            tokens.append((kind, word.upper() if kind == "kw" else word))
        else:
            raw = m.group("dq") if m.group("dq") is not None else m.group("sq")
            tokens.append(("str", _ESCAPE_RE.sub(r"\1", raw)))
    return tokens


class _Parser:
    def __init__(self, tokens: List[Tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> Optional[Tuple[str, str]]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.pos += 1
        return token

    def parse(self) -> Tuple[Predicate, FrozenSet[bytes]]:
        if not self.tokens:
            raise FilterError("empty filter")
        result = self.parse_or()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return result

    def parse_or(self) -> Tuple[Predicate, FrozenSet[bytes]]:
        parts = [self.parse_and()]
        while self.peek() == ("kw", "OR"):
            self.take()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        preds = [p for p, _ in parts]
        return (lambda e: any(p(e) for p in preds)), frozenset()

    def parse_and(self) -> Tuple[Predicate, FrozenSet[bytes]]:
        parts = [self.parse_unary()]
        while self.peek() == ("kw", "AND"):
            self.take()
            parts.append(self.parse_unary())
        if len(parts) == 1:
            return parts[0]
        preds = [p for p, _ in parts]
        needles = frozenset().union(*(n for _, n in parts))
        return (lambda e: all(p(e) for p in preds)), needles

    def parse_unary(self) -> Tuple[Predicate, FrozenSet[bytes]]:
        token = self.take()
        if token == ("kw", "NOT"):
            inner, _ = self.parse_unary()
            return (lambda e: not inner(e)), frozenset()
        if token == ("op", "("):
            result = self.parse_or()
            if self.take() != ("op", ")"):
                raise FilterError("missing ')'")
            return result
        if token[0] != "str":
            raise FilterError(f"expected an attribute name, got {token[1]!r}")
        key = token[1]
        op = self.take()
        if op not in (("op", "="), ("op", "!=")):
            raise FilterError(f"expected = or != after {key!r}")
        value_token = self.take()
        if value_token[0] != "str":
            raise FilterError(f"expected a value after {key}{op[1]}")
        return _compare(key, op[1], value_token[1])


def _compare(key: str, op: str, value: str) -> Tuple[Predicate, FrozenSet[bytes]]:
    if value == "*":

        def present(event: Event) -> bool:
            return key in event

        return (present if op == "=" else (lambda e: not present(e))), frozenset()

    def equals(event: Event) -> bool:
        got = event.get(key)
        if isinstance(got, list):
            return value in got
        return got == value

    if op == "=":
        needle = json.dumps(value, ensure_ascii=False).encode()
        return equals, frozenset([needle])
    return (lambda e: not equals(e)), frozenset()


def compile_filter(text: str) -> Filter:
    """Parse a filter expression (raises FilterError when it is outside the subset)."""
    predicate, needles = _Parser(_tokenize(text)).parse()
    return Filter(text, predicate, needles)
