"""Pages that do not move a run forward: a token that comes back, pages that never end.

A hostile or broken hub can keep a run busy forever with valid-looking pages: the same
``X-Next-Token`` as the query's own, tokens that go in a circle, or an endless stream of new
tokens with no events or with the same events again. :class:`StallDetector` looks at each page
of a pass before it is committed and stops the run with :class:`~hubasync.errors.NoProgress`.

Its memory is bounded: it remembers digests of the last :data:`REMEMBERED` tokens and pages.
It belongs to a pass of a run, not to a process: :meth:`StallDetector.memory` is saved with the
run's state after every page, and :meth:`StallDetector.restored` takes it back, so a run stopped
and continued (a service's turn after turn, a restart) stops a hostile hub exactly where one
uninterrupted run would. The state keeps the newest :data:`PERSISTED` digests of each kind.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Dict, Hashable, List, Optional

from hubasync.core.bounds import DEFAULTS
from hubasync.errors import NoProgress

REMEMBERED = 10_000
PERSISTED = 1_000
_DIGEST_BYTES = 8


def _short(token: str) -> str:
    return token if len(token) <= 24 else token[:21] + "..."


def digest(item: Hashable) -> str:
    """A short, stable digest of a token or a page's signature (its repr), as saved."""
    text = item if isinstance(item, str) else repr(item)
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).hexdigest()


class _Recent:
    """A set of the last ``size`` digests added, oldest first."""

    def __init__(self, size: int, items: List[str] = ()) -> None:  # type: ignore[assignment]
        self._size = size
        self._items: OrderedDict[str, None] = OrderedDict()
        for item in items:
            self.add(item)

    def __contains__(self, item: str) -> bool:
        return item in self._items

    def add(self, item: str) -> None:
        self._items[item] = None
        self._items.move_to_end(item)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def newest(self, count: int) -> List[str]:
        items = list(self._items)
        return items[-count:] if count else []


class StallDetector:
    """Checks, page after page of one pass, that the hub's pages lead somewhere."""

    def __init__(self, max_empty_pages: int = DEFAULTS.max_empty_pages,
                 remembered: int = REMEMBERED) -> None:
        self.max_empty_pages = max_empty_pages
        self._remembered = remembered
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
            self._tokens.add(digest(token))
        if digest(next_token) in self._tokens:
            raise NoProgress(f"the hub's tokens go in a circle: X-Next-Token "
                             f"{_short(next_token)} was already asked for in this run")
        if events == 0:
            if self._empty + 1 > self.max_empty_pages:
                raise NoProgress(f"the hub sent {self._empty + 1} pages in a row without "
                                 "events, each with a new X-Next-Token (--max-empty-pages)")
            self._empty += 1
            return
        page = digest(signature)
        if page in self._pages:
            raise NoProgress("the hub sent the same events again under a new X-Next-Token: "
                             "the run would never end")
        self._empty = 0
        self._pages.add(page)

    def memory(self) -> Dict[str, Any]:
        """What a later run of the same pass needs to go on checking as this one would."""
        return {"empty_pages": self._empty, "tokens": self._tokens.newest(PERSISTED),
                "pages": self._pages.newest(PERSISTED)}

    @classmethod
    def restored(cls, memory: Dict[str, Any], max_empty_pages: int) -> StallDetector:
        """A detector that goes on from ``memory`` (as :meth:`memory` made it; checked by the
        state's reader)."""
        detector = cls(max_empty_pages)
        detector._empty = int(memory.get("empty_pages", 0))
        detector._tokens = _Recent(detector._remembered, list(memory.get("tokens", [])))
        detector._pages = _Recent(detector._remembered, list(memory.get("pages", [])))
        return detector
