"""A response body's ``Content-Encoding`` undone chunk by chunk, in bounded pieces.

``make_decoder`` gives the decoder of a response's ``Content-Encoding``: gzip (several members
included) or none. However well a body compresses, it is expanded at most :data:`PIECE_MAX`
bytes at a time, so a gzip bomb costs no more memory than an ordinary body.
"""

from __future__ import annotations

import zlib
from typing import Iterator, Optional, Protocol

from hubasync.errors import BadBody


class Decoder(Protocol):
    """Undoes a ``Content-Encoding`` incrementally."""

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes ``data`` completes (possibly none), in pieces of at most
        :data:`PIECE_MAX` bytes."""
        ...

    def finish(self) -> bytes:
        """Return the last decoded bytes; raise ``BadBody`` if the stream is incomplete."""
        ...


class _Identity:
    def pieces(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def finish(self) -> bytes:
        return b""


_GZIP_WBITS = 16 + zlib.MAX_WBITS
PIECE_MAX = 1 << 20


class _Gzip:
    """gzip, including bodies of several concatenated members (RFC 1952 §2.2)."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(_GZIP_WBITS)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most :data:`PIECE_MAX` bytes.

        However well the body compresses, no more than a piece is expanded at a time.
        """
        try:
            while data:
                if self._z.eof:
                    self._z = zlib.decompressobj(_GZIP_WBITS)
                out = self._z.decompress(data, PIECE_MAX)
                data = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
                if out:
                    yield out
        except zlib.error as exc:
            raise BadBody(f"response body is not valid gzip: {exc}") from exc

    def finish(self) -> bytes:
        try:
            out = self._z.flush()
        except zlib.error as exc:
            raise BadBody(f"response body is not valid gzip: {exc}") from exc
        if not self._z.eof:
            raise BadBody("response body cut short: the gzip stream is incomplete")
        return out


def make_decoder(content_encoding: Optional[str]) -> Decoder:
    """The decoder for a response's ``Content-Encoding`` header value (None when absent)."""
    name = (content_encoding or "").strip().lower()
    if name in ("gzip", "x-gzip"):
        return _Gzip()
    if name in ("", "identity"):
        return _Identity()
    raise BadBody(f"unsupported Content-Encoding: {content_encoding!r}")
