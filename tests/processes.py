"""Child processes and waiting, done so that a test cannot hang on a full pipe or race a clock.

- :class:`Child` sends a child's stdout and stderr to files, never to a pipe nobody reads: a
  pipe holds 64 KB, and a child that fills it blocks until the test reads, which it may do
  only after it decided the child was stuck.
- :func:`wait_until` waits for a condition (a simulator counter, a file's size, a line on
  stderr) with a generous deadline, instead of ``time.sleep(N)`` and hoping N was enough.
- :func:`refused_port` holds a port that is bound and not listening for as long as the test
  runs: connections to it are refused, and no other process can take it meanwhile (unlike a
  port found free and released at once).
- :func:`silent_port` accepts connections and then neither reads, answers nor closes them: a
  receiver that hangs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

PATIENCE = 60.0  # seconds: generous on purpose, a loaded 2-core machine can be very slow


def wait_until(condition: Callable[[], Any], what: str, timeout: float = PATIENCE,
               child: Optional[Child] = None) -> Any:
    """Poll ``condition`` until it returns something true, and return that.

    Fails naming ``what`` after ``timeout`` seconds, or at once if ``child`` exits meanwhile
    (with its stderr in the message).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if child is not None and child.poll() is not None:
            value = condition()
            if value:
                return value
            raise AssertionError(f"the child exited ({child.returncode}) before {what}: "
                                 f"{child.stderr_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.01)


class Child:
    """A process whose stdout and stderr go to temporary files, read at any time."""

    def __init__(self, argv: Sequence[str], *, env: Optional[Dict[str, str]] = None,
                 cwd: Optional[str] = None, stdout: Optional[Any] = None) -> None:
        self._out: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL,
                                        stdout=self._out if stdout is None else stdout,
                                        stderr=self._err, env=env, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> Optional[int]:
        return self.process.returncode

    def poll(self) -> Optional[int]:
        return self.process.poll()

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = PATIENCE) -> int:
        """The exit code; fails (and kills the child) if it does not exit within ``timeout``."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the child did not exit within {timeout:g} s: "
                                 f"{self.stderr_text()}") from None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = PATIENCE) -> int:
        self.send_signal(signum)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @staticmethod
    def _read(handle: IO[bytes]) -> bytes:
        return os.pread(handle.fileno(), os.fstat(handle.fileno()).st_size, 0)

    def stdout_bytes(self) -> bytes:
        return self._read(self._out)

    def stderr_text(self) -> str:
        return self._read(self._err).decode("utf-8", "replace")

    def stderr_has(self, text: str) -> bool:
        return text in self.stderr_text()

    def close(self) -> None:
        self.kill()
        self._out.close()
        self._err.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: a connect gets ECONNREFUSED
        yield int(sock.getsockname()[1])


@contextmanager
def silent_port() -> Iterator[Tuple[int, List[socket.socket]]]:
    """A loopback port whose listener accepts every connection and then neither reads, answers
    nor closes it (a receiver that hangs); yields the port and the connections accepted so far.
    Everything is closed when the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted: List[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, name="silent-port", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), accepted
    finally:
        done.set()
        thread.join()
        listener.close()
        for connection in accepted:
            connection.close()


def file_size(path: Any) -> int:
    """The size of ``path``, 0 while it does not exist."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
