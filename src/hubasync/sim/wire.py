"""Low-level misbehaviour on a socket: resets, cut bodies, corrupt gzip, trickling, chunking."""

from __future__ import annotations

import json
import select
import socket
import struct
import time
import zlib
from io import BufferedIOBase
from typing import Iterator


def reset(sock: socket.socket) -> None:
    """Make the coming close send RST instead of FIN (SO_LINGER 0), and close."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def corrupt_gzip(body: bytes) -> bytes:
    """The gzip ``body`` with its deflate stream damaged midway (same length).

    The damage is an invalid stretch of bits; inflate fails on it or, at the latest, on the
    CRC of the trailer. Bodies too short to damage get their trailer flipped instead.
    """
    data = bytearray(body)
    if len(data) > 64:
        mid = len(data) // 2
        data[mid : mid + 16] = b"\xff" * 8 + b"\x00" * 8
    if len(data) >= 8:
        for i in range(len(data) - 8, len(data) - 4):
            data[i] ^= 0xFF
    return bytes(data)


def cut_json(raw: bytes) -> bytes:
    """A JSON array cut in the middle, closed with ``"]``: never valid JSON.

    Cut inside a string, the quote closes it and the object stays open; cut outside one, the
    quote opens a string that never ends.
    """
    return raw[: max(1, len(raw) // 2)] + b'"]'


def trickle_pieces(body: bytes) -> Iterator[bytes]:
    """The body in pieces: 1 to 7 bytes at first (splitting headers and characters), then
    about fifty larger ones."""
    pos = 0
    size = 1
    while pos < len(body) and pos < 200:
        yield body[pos : pos + size]
        pos += size
        size = size % 7 + 1
    rest = len(body) - pos
    step = max(1, rest // 50)
    while pos < len(body):
        yield body[pos : pos + step]
        pos += step


def write_trickle(out: BufferedIOBase, body: bytes, duration: float) -> None:
    """Write ``body`` in small pieces spread over ``duration`` seconds."""
    pieces = list(trickle_pieces(body))
    pause = duration / max(1, len(pieces))
    for piece in pieces:
        out.write(piece)
        out.flush()
        if pause:
            time.sleep(pause)


MIN_TRICKLE_PAUSE = 0.01  # the shortest pause of an endless trickle, even with fault_delay 0


def array_start(raw: bytes) -> bytes:
    """The start of a valid JSON array: ``[`` and the first event of ``raw`` (a page), if any."""
    events = json.loads(raw) if raw else []
    if not events:
        return b"["
    return b"[" + json.dumps(events[0], ensure_ascii=False, separators=(",", ":")).encode()


def write_chunk(out: BufferedIOBase, data: bytes) -> None:
    """One chunk of a chunked body, flushed."""
    out.write(b"%x\r\n%s\r\n" % (len(data), data))
    out.flush()


def peer_gone(sock: socket.socket, wait: float) -> bool:
    """Wait ``wait`` seconds; True as soon as the peer has closed (or reset) the connection."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], left)
            if not readable:
                return False
            if not sock.recv(1, socket.MSG_PEEK):
                return True
        except (OSError, ValueError):
            return True
        time.sleep(left)  # the client sent something: it is still there
        return False


def write_chunked(out: BufferedIOBase, body: bytes, size: int = 16384) -> None:
    """Write ``body`` with chunked transfer coding (uneven chunk sizes, then the last chunk)."""
    pos = 0
    step = 1000
    while pos < len(body):
        piece = body[pos : pos + step]
        out.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        pos += len(piece)
        step = size
    out.write(b"0\r\n\r\n")


def gunzip(body: bytes) -> bytes:
    """The data of a gzip body."""
    return zlib.decompress(body, 47)
