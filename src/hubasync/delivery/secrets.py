"""Secrets of a destination (a HEC token, a key passphrase, a SASL password): read from an
environment variable or a file, held so that no ``repr``, ``str`` or message shows them, and
redacted from any text a receiver echoes.

A small local helper on purpose: the delivery package imports nothing from hubasync but its
errors, so that it can move without the rest.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from ..errors import UsageError

REDACTED = "***"


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


def read_secret(env: Optional[str], path: Optional[str], what: str, where_env: str,
                where_file: str, required: bool) -> Optional[Secret]:
    """The secret named by an environment variable ``env`` or held in the first line of the
    file ``path`` (at most one of them). Errors name the option, never the value."""
    if env is not None and path is not None:
        raise UsageError(f"{where_env}: give {what} by an environment variable or a file, "
                         f"not both ({where_file} is set too)")
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise UsageError(f"{where_env}: the environment variable {env} holding {what} is "
                             "not set or empty")
        return Secret(value.strip())
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
            raise UsageError(f"{where_file}: cannot read {what} from {path}: {reason}") from None
        if not value:
            raise UsageError(f"{where_file}: the first line of {path} is empty ({what})")
        return Secret(value)
    if required:
        raise UsageError(f"{where_env}: {what} is needed: set {_option(where_env)} or "
                         f"{_option(where_file)}")
    return None


def _option(where: str) -> str:
    """The option's own name in ``where`` (``destinations.x.token_env``, ``--to (query
    parameter token_env)``, ``--to option token_env``)."""
    return where.rstrip(")").replace(".", " ").split()[-1]


def redact(text: str, secrets: Iterable[Optional[Secret]]) -> str:
    """``text`` with every secret's value replaced by ``***``."""
    for secret in secrets:
        if secret is not None and secret.reveal():
            text = text.replace(secret.reveal(), REDACTED)
    return text
