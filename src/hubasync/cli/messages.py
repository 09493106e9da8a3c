"""Every line hubasync prints on stderr, redacted of the secrets the run holds.

The command line registers its secrets (the API key) with :func:`keep_secret` as soon as it
knows them; from then on :func:`say`, :func:`say_line` and :func:`say_traceback` take them
out of whatever they print, the hub's own words and ``--debug`` tracebacks included. With
stderr closed (``2>&-``) the lines are dropped: exit codes do not change.

A live line on the terminal (:class:`hubasync.cli.progress.Progress`) registers a hook with
:func:`set_before_writing`: every line printed here calls it first, so that no line is glued to
the progress line.
"""

from __future__ import annotations

import sys
import traceback
from typing import Callable, List, Optional

from hubasync.core.redaction import redact
from hubasync.version import PROG

_secrets: List[str] = []
_before_writing: Optional[Callable[[], None]] = None


def keep_secret(secret: Optional[str]) -> None:
    """Never print ``secret`` (in any of its URL-quoted forms) from now on."""
    if secret and secret not in _secrets:
        _secrets.append(secret)


def forget_secrets() -> None:
    """Drop every registered secret (for a process that runs several commands in turn)."""
    _secrets.clear()


def redacted(text: str) -> str:
    """``text`` with ``apikey=`` values and every registered secret taken out."""
    text = redact(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = redact(text, secret)
    return text


def set_before_writing(hook: Optional[Callable[[], None]]) -> Optional[Callable[[], None]]:
    """Call ``hook`` (or nothing, for None) before each line printed; returns the previous one."""
    global _before_writing
    previous, _before_writing = _before_writing, hook
    return previous


def say_line(text: str) -> None:
    """Print ``text`` as it is (redacted) on stderr: the continuation token, for one."""
    stream = sys.stderr
    if stream is None:  # stderr was closed when Python started
        return
    if _before_writing is not None:
        _before_writing()
    try:
        stream.write(redacted(text) + "\n")
        stream.flush()
    except (OSError, ValueError):  # closed or broken: what cannot be said is dropped
        pass


def say(message: str) -> None:
    """Print ``hubasync: message`` on stderr, redacted."""
    say_line(f"{PROG}: {message}")


def say_traceback(error: BaseException) -> None:
    """Print ``error``'s traceback (``--debug``), formatted to text and redacted first."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    say_line(text.rstrip("\n"))
