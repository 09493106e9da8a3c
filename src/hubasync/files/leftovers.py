"""The temporary files a killed process left beside a file: found by their names, removed by
the run that holds the file's lock.

Each kind of temporary has its own name (``.BASE.XXXXXXXX.tmp`` for ``tempfile.mkstemp``'s,
``.BASE.new.HHHHHHHH`` for a new output), told apart by plain string tests. A folder is listed
once per claim: a service claiming hundreds of shares in one directory passes one
:class:`ListedOnce` to all of them, instead of listing it three times a share.
"""

from __future__ import annotations

import os
import string
from typing import Callable, Dict, List, Sequence

Listing = Callable[[str], Sequence[str]]
"""The names in a folder (none when it cannot be listed)."""

_MKSTEMP = frozenset(string.ascii_lowercase + string.digits + "_")
_HEX = frozenset(string.hexdigits.lower())


def list_folder(folder: str) -> List[str]:
    """The names in ``folder`` now; none when it is missing or cannot be read."""
    try:
        return os.listdir(folder)
    except OSError:
        return []


class ListedOnce:
    """Each folder listed the first time it is asked for, then from memory: for claiming many
    files of one folder in a row. A name removed since is still given (removing it again fails
    harmlessly); the claimer holds the locks of the files whose temporaries it looks for, so
    no run of ours adds one meanwhile."""

    def __init__(self) -> None:
        self._names: Dict[str, List[str]] = {}

    def __call__(self, folder: str) -> List[str]:
        names = self._names.get(folder)
        if names is None:
            names = self._names[folder] = list_folder(folder)
        return names


def _named(name: str, prefix: str, suffix: str, alphabet: frozenset[str]) -> bool:
    """Whether ``name`` is ``prefix``, 8 characters of ``alphabet``, ``suffix``."""
    middle = name[len(prefix):len(name) - len(suffix)]
    return (len(name) == len(prefix) + 8 + len(suffix) and name.startswith(prefix)
            and name.endswith(suffix) and alphabet.issuperset(middle))


def mkstemp_temporary(base: str) -> Callable[[str], bool]:
    """Whether a name is that of a temporary ``tempfile.mkstemp(prefix=f".{base}.",
    suffix=".tmp")`` made beside ``base``."""
    prefix = f".{base}."
    return lambda name: _named(name, prefix, ".tmp", _MKSTEMP)


def new_output_temporary(base: str) -> Callable[[str], bool]:
    """Whether a name is that of a new output being put in place at ``base``
    (``.BASE.new.HHHHHHHH``)."""
    prefix = f".{base}.new."
    return lambda name: _named(name, prefix, "", _HEX)


def remove_temporaries(path: str, temporary: Callable[[str], bool],
                       listing: Listing = list_folder) -> None:
    """Remove the files beside ``path`` whose names ``temporary`` accepts (a link is removed,
    never its target); a file that cannot be removed is left."""
    folder = os.path.dirname(os.path.abspath(path))
    for name in listing(folder):
        if name[:1] == "." and temporary(name):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                pass
