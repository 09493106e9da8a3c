"""The checks made before the API key goes anywhere: a key that fits in a header, and an
origin it may be sent to. Shared by the command line and the library."""

from __future__ import annotations

from hubasync.core.urls import ShareUrl, is_loopback
from hubasync.errors import UsageError


def check_key_and_origin(share: ShareUrl, apikey: str, *, allow_http: bool) -> None:
    """Refuse a key that cannot travel in a header, or plain http to another machine."""
    if share.scheme == "http" and not (allow_http or is_loopback(share.host)):
        raise UsageError(
            f"refusing plain http to {share.host}: the API key would cross the network "
            "unencrypted (use https, or allow plain http explicitly: --allow-http, "
            "allow_http=True)"
        )
    if not apikey:
        raise UsageError("the API key is empty")
    if any(ord(char) < 0x21 or ord(char) > 0x7E for char in apikey):
        raise UsageError("the API key holds spaces or characters that cannot go in a header")
