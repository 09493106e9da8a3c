"""What the session needs of a transport: send a request, wait for its answer, read its body.

:mod:`hubasync.transport.http` implements it over ``http.client``; the tests replace it with one
that answers from memory, so the orchestration above is tested without a socket.

Threads: a transport, its exchanges and their responses are used by one thread at a time (the
one driving the run), except :meth:`Transport.abort`, which any thread may call to break every
connection at once (a stop that cannot wait for a slow hub).
"""

from __future__ import annotations

from typing import Iterator, Optional, Protocol


class Response(Protocol):
    """An answer whose status and headers have arrived; its body is read on demand."""

    url: str
    status: int

    def header(self, name: str) -> Optional[str]:
        """The value of header ``name`` (case-insensitive), or None."""
        ...

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives (still content-encoded); raises BadBody or NetworkError."""
        ...

    def read_small(self, limit: int) -> bytes:
        """The whole body of a small answer, at most ``limit`` bytes (else BadBody)."""
        ...

    def abandon(self) -> None:
        """Give up on the body; its connection is not reused."""
        ...


class Exchange(Protocol):
    """A request on its way, whose answer has not been read yet."""

    sent_at: float  # monotonic time it was sent

    def ready(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the answer to start arriving; True once it has
        (or once waiting longer cannot help: :meth:`response` then says what went wrong)."""
        ...

    def response(self) -> Response:
        """Wait for the answer's status and headers; raises NetworkError."""
        ...

    def cancel(self) -> None:
        """Drop the request; its answer is never read."""
        ...


class Transport(Protocol):
    """Requests to one origin, each carrying the share's credentials."""

    def send(self, method: str, url: str) -> Exchange:
        """Send a request without waiting for its answer; raises NetworkError."""
        ...

    def abort(self) -> None:
        """Break every connection now, from any thread: whatever waits on one fails at once."""
        ...

    def close(self) -> None: ...
