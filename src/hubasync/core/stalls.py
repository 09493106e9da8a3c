"""Pages that do not move a run forward: a token that comes back, pages that never end.

A hostile or broken hub can keep a run busy forever with valid-looking pages: the same
``X-Next-Token`` as the query's own, tokens that go in a circle, or an endless stream of new
tokens with no events or with the same events again. :class:`StallDetector` looks at each page
of a pass before it is committed and stops the run with :class:`~hubasync.errors.NoProgress`.
Its memory is bounded: it remembers the last :data:`REMEMBERED` tokens and pages.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable, Optional

from hubasync.core.bounds import DEFAULTS
from hubasync.errors import NoProgress

REMEMBERED = 10_000


def _short(token: str) -> str:
    return token if len(token) <= 24 else token[:21] + "..."


class _Recent:
    """A set of the last ``size`` items added."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, item: Hashable) -> bool:
        return item in self._items

    def add(self, item: Hashable) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        if len(self._items) > self._size:
            self._items.popitem(last=False)


class StallDetector:
    """Checks, page after page of one pass, that the hub's pages lead somewhere."""

    def __init__(self, max_empty_pages: int = DEFAULTS.max_empty_pages,
                 remembered: int = REMEMBERED) -> None:
        self.max_empty_pages = max_empty_pages
        self._tokens = _Recent(remembered)
        self._pages = _Recent(remembered)
        self._empty = 0

    def check(self, token: Optional[str], next_token: Optional[str], events: int,
              signature: Hashable) -> None:
        """A page asked with ``token`` ended with ``next_token`` after ``events`` events."""
        if next_token is None:
            return
        if next_token == token:
            raise NoProgress(f"the hub answered the query for token {_short(next_token)} with "
                             "the same X-Next-Token: the run would repeat that page forever")
        if token is not None:
            self._tokens.add(token)
        if next_token in self._tokens:
            raise NoProgress(f"the hub's tokens go in a circle: X-Next-Token "
                             f"{_short(next_token)} was already asked for in this run")
        if events == 0:
            self._empty += 1
            if self._empty > self.max_empty_pages:
                raise NoProgress(f"the hub sent {self._empty} pages in a row without events, "
                                 "each with a new X-Next-Token (--max-empty-pages)")
            return
        self._empty = 0
        if signature in self._pages:
            raise NoProgress("the hub sent the same events again under a new X-Next-Token: "
                             "the run would never end")
        self._pages.add(signature)
