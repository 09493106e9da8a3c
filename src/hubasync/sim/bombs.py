"""Gzip bombs: a few MB of gzip inflating to over 1 GiB, built in a second without ever holding
the inflated data (one compressed block, repeated after a full flush), cached once built."""

from __future__ import annotations

import struct
import threading
import zlib
from typing import Dict, Tuple

BLOCK = 1 << 20          # inflated size of the repeated block
BLOCKS = 1024            # so the run alone inflates to 1 GiB
_EVENT = (b'{"observation time":"2026-01-01 00:00:00Z","feed":"bomb","type":"scanner",'
          b'"ip":"192.0.2.1"')

# kind: (prefix, the byte repeated, repeats of the block, bytes after the run, suffix)
_SHAPES: Dict[str, Tuple[bytes, bytes, int, bytes, bytes]] = {
    "string": (b"[" + _EVENT + b',"description":"', b"a", BLOCKS, b"", b'"}]'),
    "whitespace": (b"[" + _EVENT + b"}", b" ", BLOCKS, b"", b"]"),
    # Half the run opens arrays, the other half closes them: valid JSON, nested 512 Mi deep.
    "nesting": (b"[" + _EVENT + b',"nest":', b"[", BLOCKS // 2, b"]", b"}]"),
}

_cache: Dict[str, bytes] = {}
_lock = threading.Lock()


def _raw_block(data: bytes, final: bool) -> bytes:
    """``data`` as raw deflate blocks that stand alone: byte-aligned, referring to nothing
    before them (full flush), so they can be concatenated and repeated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH)


def bomb(kind: str) -> bytes:
    """The gzip body of bomb ``kind`` (``string``, ``whitespace`` or ``nesting``)."""
    with _lock:
        found = _cache.get(kind)
        if found is None:
            found = _cache[kind] = _build(*_SHAPES[kind])
        return found


def inflated_size(kind: str) -> int:
    """How many bytes bomb ``kind`` inflates to."""
    prefix, byte, repeats, closer, suffix = _SHAPES[kind]
    return len(prefix) + BLOCK * repeats + len(closer) * BLOCK * repeats + len(suffix)


def _build(prefix: bytes, byte: bytes, repeats: int, closer: bytes, suffix: bytes) -> bytes:
    block = byte * BLOCK
    parts = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", _raw_block(prefix, False)]
    crc = zlib.crc32(prefix)
    size = len(prefix)
    runs = [(block, _raw_block(block, False))]
    if closer:
        close_block = closer * BLOCK
        runs.append((close_block, _raw_block(close_block, False)))
    for data, packed in runs:
        parts.append(packed * repeats)
        for _ in range(repeats):
            crc = zlib.crc32(data, crc)
        size += len(data) * repeats
    parts.append(_raw_block(suffix, True))
    crc = zlib.crc32(suffix, crc)
    size += len(suffix)
    parts.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(parts)
