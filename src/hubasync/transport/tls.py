"""TLS to the hub: a certificate-verifying context, the check of a ``--cacert`` file, and a
probe that tells whether a port speaks TLS.

The check is shared by the command line, the library and the service's config, and made before
any request; each raises :class:`~hubasync.errors.UsageError` (a subclass of it for the library)
naming the option or argument.
"""

from __future__ import annotations

import socket
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



def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` answers a TLS hello in TLS: asked when plain http there was met
    with a connection closed at once, as a TLS server closes on a plain request.

    The hello is followed by an empty line, so that a plain HTTP server answers (or closes) at
    once instead of waiting for the end of a request line; a TLS server answers the hello first.
    Nothing but the hello is sent: no request, no key.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname=host)
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:  # the hello is written, an answer is awaited
        pass
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(outgoing.read() + b"\r\n\r\n")
            answer = b""
            while len(answer) < 2:
                data = sock.recv(2 - len(answer))
                if not data:
                    break
                answer += data
    except OSError:
        return False
    # a TLS record: handshake (the server's hello) or alert, protocol version 3.x
    return len(answer) == 2 and answer[0] in (0x15, 0x16) and answer[1] == 0x03
