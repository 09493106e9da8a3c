"""Byte destinations with page transactions: a page reaches the output whole or not at all.

An :class:`Output` receives the bytes of one page through :meth:`Output.write`, then either
:meth:`Output.commit` makes them part of the output or :meth:`Output.rollback` discards them.
:func:`open_output` picks how, from the destination:

- a file path, ``atomic=True`` (the default): the bytes go straight into ``PATH.part`` beside
  ``PATH``; a rollback truncates it back to the last commit; ``close(complete=True)`` renames it
  onto ``PATH``; ``close(complete=False)`` leaves ``PATH.part`` holding committed pages only, so a
  later run can continue it (it is removed when no page was committed);
- a file path, ``append=True``: the bytes go straight into ``PATH`` itself, after what it holds;
- a file path, ``atomic=False``: ``PATH`` is written in place from empty;
- a file path naming a character device, a FIFO or a socket (``-o /dev/null``): written through,
  as ``cat > PATH`` would, each page spooled and copied out on commit as for a pipe;
- a file path naming a symbolic link to a regular file (or to nothing yet): the link's target is
  the file written, so the link stays a link;
- standard output that is a regular file (``> out.json``, ``>> out.json``): written straight
  through and truncated back on rollback, like a file path;
- standard output that is anything else (pipe, terminal, socket, device): each page is spooled
  (in memory up to 8 MiB, then in a temporary file) and copied out on commit, so a reader never
  sees a byte of a page that is not committed. A page whose copy fails midway (the reader went
  away, the device is full) may have reached the stream in part: nothing can take it back.

Temporary files (``PATH.part``) are never opened through a symbolic link: a fresh one is created
with ``O_EXCL | O_NOFOLLOW`` after removing a stale one, a continued one must be a regular file
with a single link.

``resume_offset=N`` continues a destination that holds ``N`` committed bytes from an earlier run,
cutting whatever a killed run left past them, once it has checked that the file is the one the
earlier run wrote (:func:`tail_digest` of its committed bytes, and its size after a clean stop).
Every ``OSError`` becomes an
:class:`~hubasync.errors.OutputError` naming the destination and the reason.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from hubasync.errors import OutputError
from hubasync.files.lock import FileLock, lock_file

STDOUT_NAME = "<stdout>"

_O_BINARY: int = getattr(os, "O_BINARY", 0)
_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY: int = getattr(os, "O_NOCTTY", 0)
TAIL_BYTES = 64 << 10
_WRITE_CHUNK = 1 << 20
_IOV_MAX = 1024  # the fewest parts POSIX lets one writev take
_SPOOL_MEMORY = 8 << 20


def _failure(action: str, name: str, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"cannot {action} {name}: {reason}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_parts(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` one after the other, with no copy into one buffer where ``os.writev``
    exists (at most :data:`_IOV_MAX` parts a call, partial writes continued)."""
    writev = getattr(os, "writev", None)
    if writev is None or len(parts) == 1:  # Windows has no writev
        _write_all(fd, parts[0] if len(parts) == 1 else b"".join(parts))
        return
    pending: list[bytes | memoryview] = list(parts)
    while pending:
        written = writev(fd, pending[:_IOV_MAX])
        done = 0
        while done < len(pending) and written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        del pending[:done]
        if written:
            pending[0] = memoryview(pending[0])[written:]


def _refuse_lost_page(lost: bool, name: str) -> None:
    if lost:
        raise OutputError(f"cannot commit to {name}: part of the page was lost; roll it back")


def tail_digest(fd: int, offset: int) -> str:
    """The sha256 (hex) of the ``TAIL_BYTES`` bytes of ``fd`` before ``offset`` (all when fewer).

    A state records it to recognise its output later; the position of ``fd`` is left as it was.
    """
    start = max(0, offset - TAIL_BYTES)
    digest = hashlib.sha256()
    here = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        os.lseek(fd, start, os.SEEK_SET)
        left = offset - start
        while left:
            chunk = os.read(fd, min(left, _WRITE_CHUNK))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    finally:
        os.lseek(fd, here, os.SEEK_SET)
    return digest.hexdigest()


def fsync_directory(path: str) -> None:
    """Make a rename inside the directory of ``path`` durable (where the platform allows it)."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return  # directories cannot be opened on this platform (Windows): nothing to sync
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


class Output:
    """A byte destination written one page at a time.

    ``offset`` is the committed size of the destination: what survives any stop of the run.
    ``name`` names the destination in messages. ``continued`` is true when the destination already
    held committed bytes of an earlier run (``resume_offset`` on a file) that this one extends.
    ``end`` is ``None`` while the output is open; once it is closed, the size it was left with
    (``offset`` plus any trailer).
    """

    name: str
    offset: int
    continued: bool
    end: int | None = None

    def committed_tail(self) -> str | None:
        """:func:`tail_digest` of the committed bytes; ``None`` where they cannot be read back."""
        return None

    def identity(self) -> tuple[int, int] | None:
        """``(device, inode)`` of the file written, where it is a file; else ``None``."""
        return None

    def size_on_disk(self) -> int | None:
        """The file's size now (someone may have cut it: ``copytruncate``); ``None`` for what
        is not a file."""
        return None

    def reader(self) -> int | None:
        """A new descriptor of the file, to read it (``os.pread``) after it is closed and
        wherever it was moved; ``None`` for what is not a file. The caller closes it."""
        return None

    def write(self, data: bytes) -> None:
        """Add ``data`` to the current page."""
        raise NotImplementedError

    def commit(self) -> int:
        """Make the current page part of the output; return the new committed offset."""
        raise NotImplementedError

    def rollback(self) -> None:
        """Discard everything written since the last commit."""
        raise NotImplementedError

    def close(self, *, complete: bool, trailer: bytes = b"") -> None:
        """Release the destination; closing twice does nothing.

        ``complete=True`` commits what is pending and finalizes the output. ``complete=False``
        drops the uncommitted page and keeps the committed ones, followed by ``trailer`` (e.g. the
        bracket that closes a JSON array), which is never counted in ``offset``: a run that
        continues this output starts at ``offset`` and overwrites it.
        """
        raise NotImplementedError

    def detach(self) -> None:
        """Let go of the destination as it is now, writing and cutting nothing (a file someone
        else cut under the run); the output is closed."""
        self.close(complete=False)


class _FileOutput(Output):
    """Writes straight into a regular file; rollback truncates it back to the committed size."""

    def __init__(
        self,
        fd: int,
        name: str,
        *,
        offset: int,
        durable: bool,
        owns_fd: bool,
        continued: bool,
        final_path: str | None = None,
    ) -> None:
        self.name = name
        self.offset = offset
        self.continued = continued
        self._fd = fd
        self._durable = durable
        self._owns_fd = owns_fd
        self._final_path = final_path
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._pending = 0
        self._page_lost = False
        self._closed = False
        self._tail: tuple[int, str | None] | None = None
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)

    def identity(self) -> tuple[int, int] | None:
        return self._identity

    def reader(self) -> int | None:
        return None if self._closed else os.dup(self._fd)

    def size_on_disk(self) -> int | None:
        if self._closed:
            return None
        try:
            return os.fstat(self._fd).st_size
        except OSError:
            return None

    def committed_tail(self) -> str | None:
        if self._tail is not None and self._tail[0] == self.offset:
            return self._tail[1]
        return None if self._closed else self._remember_tail()

    def write(self, data: bytes) -> None:
        if self._closed:
            raise OutputError(f"cannot write {self.name}: already closed")
        size = len(data)
        self._pending += size
        self._buffer.append(data)
        self._buffered += size
        if self._buffered >= _WRITE_CHUNK:
            self._drain()

    def _write(self, data: bytes) -> None:
        self._write_parts([data])

    def _write_parts(self, parts: list[bytes]) -> None:
        try:
            _write_parts(self._fd, parts)
        except OSError as exc:
            self._page_lost = True
            raise _failure("write", self.name, exc) from exc

    def _drain(self) -> None:
        if not self._buffer:
            return
        parts = self._buffer
        self._buffer = []
        self._buffered = 0
        self._write_parts(parts)

    def commit(self) -> int:
        _refuse_lost_page(self._page_lost, self.name)
        self._drain()
        if self._durable:
            self._sync()
        self.offset += self._pending
        self._pending = 0
        return self.offset

    def _sync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _failure("write", self.name, exc) from exc

    def _cut(self) -> None:
        """Truncate the file to the committed offset and write from there on."""
        self._buffer.clear()
        self._buffered = 0
        self._pending = 0
        self._page_lost = False
        try:
            os.ftruncate(self._fd, self.offset)
            os.lseek(self._fd, self.offset, os.SEEK_SET)
        except OSError as exc:
            raise _failure("truncate", self.name, exc) from exc

    def rollback(self) -> None:
        self._cut()

    def close(self, *, complete: bool, trailer: bytes = b"") -> None:
        if self._closed:
            return
        self._closed = True
        fd_open = self._owns_fd
        try:
            if complete:
                self.commit()
                self._remember_tail()
                if self._final_path is not None and not self._durable:
                    self._sync()
                if self._final_path is not None:
                    os.close(self._fd)
                    fd_open = False
                    self._publish(self._final_path)
                self.end = self.offset
                return
            self._cut()
            self._remember_tail()
            if self._final_path is not None and self.offset == 0:
                os.close(self._fd)
                fd_open = False
                self._discard()
                self.end = 0
                return
            if trailer:
                self._write(trailer)
            if self._durable:
                self._sync()
            self.end = self.offset + len(trailer)
        except OSError as exc:
            raise _failure("write", self.name, exc) from exc
        finally:
            if fd_open:
                try:
                    os.close(self._fd)
                except OSError:
                    pass

    def detach(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.end = None
        if self._owns_fd:
            try:
                os.close(self._fd)
            except OSError:
                pass

    def _remember_tail(self) -> str | None:
        """Compute :meth:`committed_tail` now, and keep it for when the descriptor is closed."""
        try:
            digest: str | None = tail_digest(self._fd, self.offset)
        except OSError:
            digest = None  # a descriptor opened for writing only (standard output)
        self._tail = (self.offset, digest)
        return digest

    def _publish(self, final_path: str) -> None:
        try:
            os.replace(self.name, final_path)
            fsync_directory(final_path)
        except OSError as exc:
            raise _failure("write", final_path, exc) from exc

    def _discard(self) -> None:
        try:
            os.unlink(self.name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _failure("remove", self.name, exc) from exc


class _SpooledOutput(Output):
    """Holds each page in a spool and copies it to a stream that cannot be taken back on commit.

    Once a copy is cut short (an error, an interrupt), the stream may end inside a page: nothing
    more is written to it. ``owns_stream``: the stream is closed with the output.
    """

    def __init__(
        self, stream: BinaryIO, fd: int | None, name: str, *, owns_stream: bool = False
    ) -> None:
        self.name = name
        self.offset = 0
        self.continued = False
        self._stream = stream
        self._owns_stream = owns_stream
        self._fd = fd
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._pending = 0
        self._page_lost = False
        self._torn = False
        self._closed = False

    def _page(self) -> tempfile.SpooledTemporaryFile[bytes]:
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115
        return self._spool

    def write(self, data: bytes) -> None:
        if self._closed:
            raise OutputError(f"cannot write {self.name}: already closed")
        try:
            self._page().write(data)
        except OSError as exc:
            self._page_lost = True
            raise _failure("spool a page for", self.name, exc) from exc
        self._pending += len(data)

    def _deliver(self, data: bytes) -> None:
        try:
            if self._fd is not None:
                _write_all(self._fd, data)
            else:
                view = memoryview(data)
                while view:
                    view = view[self._stream.write(view) :]
        except OSError as exc:
            raise _failure("write", self.name, exc) from exc

    def commit(self) -> int:
        _refuse_lost_page(self._page_lost, self.name)
        if self._torn:
            raise OutputError(f"cannot write {self.name}: it ends inside a page an error cut short")
        size = self._pending
        self._torn = True
        if size:
            spool = self._page()
            try:
                spool.seek(0)
            except OSError as exc:
                raise _failure("spool a page for", self.name, exc) from exc
            while True:
                try:
                    chunk = spool.read(_WRITE_CHUNK)
                except OSError as exc:
                    raise _failure("spool a page for", self.name, exc) from exc
                if not chunk:
                    break
                self._deliver(chunk)
        if self._fd is None:
            try:
                self._stream.flush()
            except OSError as exc:
                raise _failure("write", self.name, exc) from exc
        self._torn = False
        self._empty_spool()
        self.offset += size
        return self.offset

    def _empty_spool(self) -> None:
        self._pending = 0
        self._page_lost = False
        if self._spool is not None:
            try:
                self._spool.seek(0)
                self._spool.truncate()
            except OSError as exc:
                raise _failure("spool a page for", self.name, exc) from exc

    def rollback(self) -> None:
        self._empty_spool()

    def close(self, *, complete: bool, trailer: bytes = b"") -> None:
        if self._closed:
            return
        try:
            if complete:
                self.commit()
            else:
                self._empty_spool()
                if trailer and not self._torn:
                    self._deliver(trailer)
                    if self._fd is None:
                        self._stream.flush()
        except OSError as exc:
            raise _failure("write", self.name, exc) from exc
        finally:
            self._closed = True
            if self._spool is not None:
                self._spool.close()
                self._spool = None
            if self._owns_stream:
                try:
                    self._stream.close()
                except OSError:
                    pass
        self.end = self.offset


def _stream_fd(stream: BinaryIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _position(fd: int) -> int:
    """Where the next write to ``fd`` lands: the end for an ``O_APPEND`` descriptor."""
    try:
        import fcntl
    except ImportError:
        return os.lseek(fd, 0, os.SEEK_CUR)
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
        return os.fstat(fd).st_size
    return os.lseek(fd, 0, os.SEEK_CUR)


def _truncate_for_resume(fd: int, name: str, resume_offset: int) -> None:
    size = os.fstat(fd).st_size
    if size < resume_offset:
        raise OutputError(
            f"cannot resume {name}: it holds {size} bytes, but the state says {resume_offset} "
            "were committed; the state and the output disagree (start over without the state)"
        )
    os.ftruncate(fd, resume_offset)
    os.lseek(fd, resume_offset, os.SEEK_SET)


def _open_stdout(stream: BinaryIO, *, resume_offset: int | None, durable: bool) -> Output:
    fd = _stream_fd(stream)
    regular = False
    if fd is not None:
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
    try:
        stream.flush()
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot write {STDOUT_NAME}: {exc}") from exc
    if fd is None or not regular:
        return _SpooledOutput(stream, fd, STDOUT_NAME)
    try:
        if resume_offset is not None:
            _truncate_for_resume(fd, STDOUT_NAME, resume_offset)
            offset = resume_offset
        else:
            offset = _position(fd)
    except OSError as exc:
        raise _failure("write", STDOUT_NAME, exc) from exc
    return _FileOutput(
        fd,
        STDOUT_NAME,
        offset=offset,
        durable=durable,
        owns_fd=False,
        continued=resume_offset is not None,
    )


@dataclass(frozen=True)
class OutputTarget:
    """What ``-o PATH`` names, seen as :func:`open_output` will write it.

    ``path`` is the file written: the target of a symbolic link to a regular file (or to nothing
    yet), else ``PATH`` itself. ``regular`` is true for a regular file or a path that does not exist
    yet, which are written by rename or in place and can be locked and resumed; false for what is
    written through (a character device, a FIFO, a socket).
    """

    path: str
    regular: bool


def resolve_output(path: str) -> OutputTarget:
    """Where the bytes for ``-o PATH`` go (see :class:`OutputTarget`)."""
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None  # nothing there yet, or a dangling link whose target will be created
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return OutputTarget(path, regular=False)
    if os.path.islink(path):
        return OutputTarget(os.path.realpath(path), regular=True)
    return OutputTarget(path, regular=True)


def find_by_identity(folder: str, identity: tuple[int, ...]) -> str | None:
    """The regular file of ``folder`` whose device and inode are ``identity`` (a file moved away
    beside where it was, by logrotate say), or ``None``."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    for name in names:
        path = os.path.join(folder, name)
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == tuple(identity):
            return path
    return None


def lock_output(path: str) -> FileLock:
    """Take the lock of the file ``-o PATH`` writes (beside a link's target), for the whole run.

    What is written through (a device, a FIFO) is not locked: the returned lock holds nothing.
    Raises :class:`~hubasync.errors.Busy` when another process holds it.
    """
    resolved = resolve_output(path)
    if not resolved.regular:
        return FileLock(path, None, "output")
    return lock_file(resolved.path, what="output")


def _check_target(path: str) -> None:
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: {os.strerror(errno.EISDIR)}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {path}: {os.strerror(errno.EACCES)}")


def _open_through(path: str) -> Output:
    """A device, FIFO or socket named by path: written through it, as ``cat > PATH`` would."""
    try:
        fd = os.open(path, os.O_WRONLY | _O_BINARY | _O_NOCTTY)
    except OSError as exc:
        raise _failure("write", path, exc) from exc
    return _SpooledOutput(os.fdopen(fd, "wb", buffering=0), fd, path, owns_stream=True)


def _open_regular(path: str, flags: int, *, single_link: bool) -> int:
    """Open a file that must be a regular file, without following a link at its name.

    ``single_link``: refuse a file with other hard links too (a temporary file someone planted).
    """
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            message = f"cannot write {path}: it is a symbolic link (planted there?)"
            raise OutputError(message) from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"cannot write {path}: not a regular file")
        if single_link and info.st_nlink != 1:
            raise OutputError(f"cannot write {path}: it has other hard links (planted there?)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _create_fresh(path: str, flags: int) -> int:
    """Create a temporary file anew: a stale one (or a link planted there) is removed first."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return os.open(path, flags | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o666)


class OutputMoved(OutputError):
    """The file a run resumes is no longer at its path (moved away, by logrotate say)."""


def _check_resumed(
    fd: int, name: str, resume_offset: int, tail: str | None, end: int | None
) -> None:
    """Refuse a file that is not the one the state describes; then cut it to ``resume_offset``."""
    size = os.fstat(fd).st_size
    advice = f"move {name} away and remove the state file to start over"
    if size < resume_offset:
        raise OutputError(
            f"cannot resume {name}: it holds {size} bytes, but the state says {resume_offset} "
            f"were committed; it is not the file the state describes ({advice})"
        )
    # A file cut back to ``resume_offset`` is one a resumed run reopened and was killed in
    # before it wrote anything: as the tool left it.
    if end is not None and size not in (end, resume_offset):
        raise OutputError(
            f"cannot resume {name}: it holds {size} bytes, but the run that wrote it stopped "
            f"cleanly at {end}: it was changed since (lines appended?) ({advice})"
        )
    if tail is not None and tail_digest(fd, resume_offset) != tail:
        raise OutputError(
            f"cannot resume {name}: its content is not what the state describes: another file, "
            f"or one changed since ({advice})"
        )
    os.ftruncate(fd, resume_offset)
    os.lseek(fd, resume_offset, os.SEEK_SET)


def open_output(
    path: str | None,
    *,
    append: bool = False,
    resume_offset: int | None = None,
    resume_tail: str | None = None,
    resume_end: int | None = None,
    resume_identity: tuple[int, int] | None = None,
    atomic: bool = True,
    durable: bool = False,
    stdout: BinaryIO | None = None,
) -> Output:
    """Open the destination of a run, checking up front that it can be written.

    ``path=None`` means standard output (``stdout``, else ``sys.stdout.buffer``). For a file,
    ``append=True`` writes into ``PATH`` after what it holds; otherwise ``atomic=True`` writes
    ``PATH.part`` and renames it onto ``PATH`` when complete, and ``atomic=False`` writes ``PATH``
    in place. A ``PATH`` that names a device, a FIFO or a socket is written through, whatever the
    mode; a symbolic link to a regular file is followed (see :func:`resolve_output`).

    ``resume_offset=N`` continues the file an earlier run left (``PATH.part`` when atomic, else
    ``PATH``) after cutting it to ``N`` bytes; it has no effect on a pipe or terminal, which hold
    nothing to continue. Before cutting, the file must match what the earlier run recorded:
    ``resume_tail`` (its :meth:`Output.committed_tail`, unchecked when ``None``) and
    ``resume_end`` (its size when that run closed it cleanly, or ``N`` when a run that resumed
    it was killed just after cutting it; ``None``: it may hold a torn page past ``N``, which is
    cut). ``resume_identity``: the file's device and inode; another file at the path, or none,
    raises :class:`OutputMoved` and nothing is created. ``durable=True`` fsyncs each commit.

    Raises :class:`OutputError` when the destination cannot be written, or is not the file the
    earlier run left.
    """
    if resume_offset is not None and resume_offset < 0:
        raise ValueError("resume_offset must not be negative")
    if path is None:
        stream = stdout if stdout is not None else sys.stdout.buffer
        return _open_stdout(stream, resume_offset=resume_offset, durable=durable)

    resolved = resolve_output(path)
    if not resolved.regular:
        return _open_through(path)
    path = resolved.path
    _check_target(path)
    staged = atomic and not append
    target = path + ".part" if staged else path
    base_flags = os.O_RDWR | _O_BINARY
    try:
        if resume_offset is not None:
            create = resume_offset == 0 and resume_identity is None
            flags = base_flags | (os.O_CREAT if create else 0)
            try:
                fd = _open_regular(target, flags, single_link=staged)
            except FileNotFoundError as exc:
                if resume_identity is not None:
                    raise OutputMoved(f"{path} was moved away") from None
                hint = "start over without the state"
                if staged and os.path.exists(path):
                    hint = f"{path} exists: the earlier run may have finished"
                raise OutputError(
                    f"cannot resume {path}: {target} is missing, but the state says "
                    f"{resume_offset} bytes were committed to it ({hint})"
                ) from exc
            try:
                if resume_identity is not None:
                    info = os.fstat(fd)
                    if (info.st_dev, info.st_ino) != tuple(resume_identity):
                        raise OutputMoved(f"{path} was moved away")
                _check_resumed(fd, target, resume_offset, resume_tail, resume_end)
            except BaseException:
                os.close(fd)
                raise
            offset = resume_offset
        elif append:
            fd = _open_regular(target, base_flags | os.O_CREAT, single_link=False)
            offset = os.lseek(fd, 0, os.SEEK_END)
        elif staged:
            fd = _create_fresh(target, base_flags)
            offset = 0
        else:
            fd = _open_regular(target, base_flags | os.O_CREAT | os.O_TRUNC, single_link=False)
            offset = 0
    except OSError as exc:
        raise _failure("write", path, exc) from exc
    return _FileOutput(
        fd,
        target,
        offset=offset,
        durable=durable,
        owns_fd=True,
        continued=resume_offset is not None,
        final_path=path if staged else None,
    )
