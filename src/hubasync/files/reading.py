"""Small files read whole, safely: a key, a config, a state, a status record.

A path hubasync reads may name something hostile or mistaken: a FIFO (a read would wait forever
for a writer), a device (``/dev/zero`` never ends), a directory, a socket, or a huge file.
:func:`read_bounded` reads only a regular file (a symbolic link to one is followed: systemd's
credentials are links), and at most ``limit`` bytes of it; anything else is refused with one
line naming the file and why, before any byte is read. It never blocks: the file is opened
with ``O_NONBLOCK``, so opening a FIFO without a writer returns at once, and then refused.
"""

from __future__ import annotations

import os
import stat

from hubasync.errors import OutputError

KEY_FILE_LIMIT = 64 * 1024  # bytes of an API key file
STATE_FILE_LIMIT = 4 << 20  # bytes of a run's state file

_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY: int = getattr(os, "O_NOCTTY", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnreadableFile(OutputError):
    """A file that was not read: missing, not a regular file, too large, or failing.

    Its text is one line, ``cannot read WHAT PATH: WHY``; ``reason`` is the WHY alone, and
    ``missing`` is True when the file does not exist (for callers to whom that is no error).
    """

    def __init__(self, what: str, path: str, reason: str, *, missing: bool = False) -> None:
        super().__init__(f"cannot read {what} {path}: {reason}")
        self.reason = reason
        self.missing = missing


def read_bounded(path: str, limit: int, what: str) -> bytes:
    """The whole content of the regular file at ``path``, at most ``limit`` bytes.

    ``what`` names the file in messages ("the API key file"). Raises :class:`UnreadableFile`.
    """

    def refuse(why: str, *, missing: bool = False) -> UnreadableFile:
        return UnreadableFile(what, path, why, missing=missing)

    try:
        problem = _kind_problem(os.stat(path).st_mode)  # before opening: opening a device acts
        if problem:
            raise refuse(problem)
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_CLOEXEC)
    except FileNotFoundError as error:
        raise refuse(error.strerror or "no such file", missing=True) from None
    except OSError as error:
        raise refuse(error.strerror or str(error)) from None
    try:
        info = os.fstat(fd)
        problem = _kind_problem(info.st_mode)  # what was opened, whatever was there before
        if problem:
            raise refuse(problem)
        if info.st_size > limit:
            raise refuse(f"it is {info.st_size} bytes, more than the {_size(limit)} allowed")
        chunks = []
        left = limit + 1  # one byte more than allowed tells a file that grew
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:
        raise refuse(error.strerror or str(error)) from None
    finally:
        os.close(fd)
    if left <= 0:
        raise refuse(f"it holds more than the {_size(limit)} allowed")
    return b"".join(chunks)


def read_key_file(path: str, what: str = "the API key file") -> str:
    """The first line of a key file, stripped (at most :data:`KEY_FILE_LIMIT` bytes of UTF-8
    text, not empty). Raises :class:`UnreadableFile`."""
    data = read_bounded(path, KEY_FILE_LIMIT, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableFile(what, path, "it is not text (not UTF-8)") from None
    key = text.split("\n", 1)[0].strip()
    if not key:
        raise UnreadableFile(what, path, "its first line is empty")
    return key


def _kind_problem(mode: int) -> str:
    """Why a file of ``mode`` is not read ("" for a regular file)."""
    if stat.S_ISREG(mode):
        return ""
    kind = next((kind for test, kind in _KINDS if test(mode)), "something else")
    return f"it is {kind}, not a regular file"


def _size(limit: int) -> str:
    if limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    if limit % (1 << 10) == 0:
        return f"{limit >> 10} KiB"
    return f"{limit} bytes"
