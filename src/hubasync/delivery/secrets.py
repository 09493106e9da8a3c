"""Secrets of a destination (a HEC token, a key passphrase, a SASL password): read from an
environment variable or a file, held so that no ``repr``, ``str`` or message shows them, and
redacted from any text a receiver echoes (as every secret of hubasync is:
:mod:`hubasync.core.redaction`).
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

from hubasync.core.redaction import Secret
from hubasync.core.redaction import redact as redact_text
from hubasync.errors import UsageError


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
    """``text`` with every secret's value taken out, whole tokens only, in any form it may be
    echoed in."""
    return redact_text(text, *(secret.reveal() for secret in secrets if secret is not None))
