"""TLS to the hub: a certificate-verifying context, and the check of a ``--cacert`` file.

The check is shared by the command line, the library and the service's config, and made before
any request; each raises :class:`~hubasync.errors.UsageError` (a subclass of it for the library)
naming the option or argument.
"""

from __future__ import annotations

import ssl
from typing import Optional, Type

from hubasync.errors import UsageError


def make_ssl_context(cacert: Optional[str] = None) -> ssl.SSLContext:
    """Certificate-verifying TLS context; ``cacert`` adds a private CA to the system's."""
    context = ssl.create_default_context()
    if cacert:
        context.load_verify_locations(cafile=cacert)
    return context


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
