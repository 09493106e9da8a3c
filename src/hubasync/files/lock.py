"""One writer per file: an exclusive lock, held for a whole run, that the kernel drops when the
process dies.

``lock_file(path)`` locks ``PATH.lock``, a small file beside ``path`` that holds the pid of the
holder. The lock is ``flock(LOCK_EX | LOCK_NB)`` on that file: it never waits, and no stale lock
survives a crash (``kill -9``, a reboot), since the lock belongs to the open file, not to the
file's existence. It is opened without following a symbolic link.

The lock file is removed when the lock is let go, while it is still held: a process that
opened it meanwhile and then gets the lock finds that the name no longer leads to the file it
locked, and starts again with a new one, so two processes never hold two files of one name.
Only a ``kill -9`` leaves a lock file behind, which the next run takes over.

A second process that finds the lock held gets :class:`~hubasync.errors.Busy` (exit code 75)
naming the holder's pid. Where ``fcntl`` does not exist (Windows), locking does nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from types import TracebackType
from typing import Optional, Type

from hubasync.errors import Busy, OutputError

try:
    import fcntl
except ImportError:  # Windows: no flock; locking is a no-op there
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"

_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_PID_BYTES = 32
_ATTEMPTS = 20


def lock_path(path: str) -> str:
    """The lock file that guards ``path``."""
    return path + LOCK_SUFFIX


class FileLock:
    """An exclusive lock on ``path``, held until :meth:`release` (or the end of a ``with``).

    ``path`` is the file the lock guards; ``what`` names it in messages ("output", "state file").
    """

    def __init__(self, path: str, fd: Optional[int], what: str) -> None:
        self.path = path
        self.what = what
        self._fd = fd

    @property
    def held(self) -> bool:
        """Whether this object still holds its lock (always false where locking is a no-op)."""
        return self._fd is not None

    def release(self) -> None:
        """Let go of the lock, its file removed first; releasing twice does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if _same_file(fd, lock_path(self.path)):
                os.unlink(lock_path(self.path))  # still ours, still held: nobody else's yet
        except OSError:
            pass  # a read-only folder keeps the file; the next run takes it over
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.release()


def _holder(fd: int) -> Optional[int]:
    """The pid the lock file holds, if it holds one."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, _PID_BYTES).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _record_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    data = f"{os.getpid()}\n".encode("ascii")
    while data:
        data = data[os.write(fd, data) :]


def lock_file(path: str, *, what: str = "file") -> FileLock:
    """Take the exclusive lock that guards ``path``, or fail at once.

    Raises :class:`Busy` when another process holds it, and :class:`OutputError` when the lock
    file cannot be created or opened (missing or read-only directory, a link or a non-regular
    file planted at its name).
    """
    if fcntl is None or os.path.isdir(path):
        return FileLock(path, None, what)  # a directory is refused by the writer, with its message
    for _ in range(_ATTEMPTS):
        fd = _locked(path, what)
        if _same_file(fd, lock_path(path)):
            break
        os.close(fd)  # its holder removed it as we locked it: lock the file at the name now
    else:
        raise OutputError(f"cannot lock {what} {path}: its lock file {lock_path(path)} keeps "
                          "being replaced")
    try:
        _record_pid(fd)
    except OSError as exc:
        os.close(fd)
        raise OutputError(f"cannot lock {what} {path}: lock file {lock_path(path)}: "
                          f"{exc.strerror or exc}") from exc
    return FileLock(path, fd, what)


def _same_file(fd: int, name: str) -> bool:
    """Whether ``name`` still leads to the file open at ``fd``."""
    try:
        here, there = os.fstat(fd), os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _locked(path: str, what: str) -> int:
    """The lock file of ``path`` opened (created if need be) and locked; raises Busy."""
    name = lock_path(path)
    flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o644)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ELOOP:
            reason = "it is a symbolic link"
        raise OutputError(f"cannot lock {what} {path}: lock file {name}: {reason}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError(f"cannot lock {what} {path}: lock file {name} is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(
                    f"cannot lock {what} {path}: lock file {name}: {exc.strerror or exc}"
                ) from exc
            pid = _holder(fd)
            holder = f"hubasync pid {pid}" if pid is not None else "another hubasync process"
            raise Busy(f"{what} {path} is in use by {holder}; try again later") from None
    except BaseException:
        os.close(fd)
        raise
    return fd
