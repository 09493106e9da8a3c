"""Checks of values a user gives, shared by the command line and the library.

Each raises :class:`~hubasync.errors.UsageError` (a subclass of it for the library) with a
message naming the option or argument, before any request is made.
"""

from __future__ import annotations

import ssl
from typing import Type

from .errors import UsageError


def check_sendable(name: str, value: str, error: Type[UsageError] = UsageError) -> None:
    """Refuse text that cannot be sent in a URL: lone surrogates, as Python makes of argument
    bytes that are not valid in the locale's encoding."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name}: holds bytes or characters that cannot be encoded as UTF-8 "
                    "(check the terminal's or the script's encoding)") from None


def check_cacert(path: str, name: str = "--cacert",
                 error: Type[UsageError] = UsageError) -> None:
    """Refuse a CA file that cannot be read or holds no PEM certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except FileNotFoundError:
        raise error(f"{name} {path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{name} {path}: is a directory, not a file of PEM certificates") from None
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise error(f"{name} {path}: not a file of PEM certificates "
                        f"({exc.reason or exc})") from None
        raise error(f"{name} {path}: cannot be read: {exc.strerror or exc}") from None
