"""A page's body, streamed: read ahead on a thread, gunzipped in pieces, split into events.

:class:`PageStream` hands out the events of one results body as batches of whole events, the
hub's own bytes, as they arrive, and None each time :data:`~hubasync.core.clock.IO_SLICE`
passes with nothing new (so that whoever reads it can notice a stop, or give its thread to
other work, while a body trickles); once read to its end, :attr:`PageStream.result` is what the
cursor advances from. Every way the body can fail raises: transient errors (cut short, not
gzip or JSON, connection lost) for the run loop to retry, and final ones (more events than asked
for, a body slower than its deadline).
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, Optional, Union

from hubasync.core.answers import Read
from hubasync.core.bounds import DEFAULTS
from hubasync.core.clock import IO_SLICE, Clock
from hubasync.core.cursor import PageResult
from hubasync.errors import PageTimeout, ProtocolError
from hubasync.events.decoding import make_decoder
from hubasync.events.splitter import Batch, EventSplitter
from hubasync.transport.interface import Response

READ_AHEAD_CHUNKS = 4
SIGNATURE_BYTES = 256
_END = object()


class PageStream:
    """The events of one page as they arrive; iterate once."""

    def __init__(self, response: Response, token: Optional[str], read: Read, *,
                 clock: Clock, deadline: Optional[float] = None,
                 max_events: Optional[int] = None, strict: bool = False,
                 max_event_size: int = DEFAULTS.max_event_size) -> None:
        self.token = token
        self.next_token = read.next_token
        self.last_inserted_token = read.last_inserted_token
        self._response = response
        self._clock = clock
        self._deadline = deadline
        self._max_events = max_events
        self._splitter = EventSplitter(strict=strict, max_event_size=max_event_size)
        self._finished = False
        self._first = b""
        self._last = b""

    @property
    def events(self) -> int:
        """Events handed out so far."""
        return self._splitter.count

    @property
    def result(self) -> PageResult:
        """The page, once read to its end."""
        if not self._finished:
            raise RuntimeError("the page has not been read to its end")
        return PageResult(self.token, self.next_token, self.last_inserted_token, self.events)

    @property
    def signature(self) -> tuple[int, bytes, bytes]:
        """What tells this page's events from another page's, cheaply: the count and the
        bytes that open the first event and close the last."""
        return self.events, self._first, self._last

    def __iter__(self) -> Iterator[Optional[Batch]]:
        response = self._response
        decoder = make_decoder(response.header("Content-Encoding"))
        splitter = self._splitter
        pieces = read_ahead(response, decoder.pieces, decoder.finish, clock=self._clock,
                            deadline=self._deadline)
        for data in pieces:
            if data is None:
                yield None
                continue
            batch = splitter.feed_batch(data)
            if not batch:
                continue
            if self._max_events is not None and splitter.count > self._max_events:
                response.abandon()
                raise ProtocolError(f"the hub sent more than the {self._max_events} events "
                                    "asked for")
            if not self._first:
                self._first = batch.regions[0][:SIGNATURE_BYTES]
            self._last = batch.regions[-1][-SIGNATURE_BYTES:]
            yield batch
        splitter.finish()
        self._finished = True


def read_ahead(response: Response, transform: Callable[[bytes], Iterable[bytes]],
               final: Callable[[], bytes], *, clock: Clock,
               deadline: Optional[float] = None) -> Iterator[Optional[bytes]]:
    """The body's chunks passed through ``transform`` (e.g. gunzip, in bounded pieces),
    then ``final()``; None each time :data:`IO_SLICE` passes without a chunk.

    A thread reads and transforms up to :data:`READ_AHEAD_CHUNKS` chunks ahead of the
    consumer: socket reads and zlib release the interpreter lock, so on two cores the body
    is fetched and decompressed while the consumer splits and writes the previous chunk.
    Errors are raised in the consumer; leaving the loop early drops the connection. Past the
    monotonic time ``deadline``, :class:`PageTimeout` is raised, however the bytes trickle.
    """
    chunks: queue.Queue[Union[bytes, BaseException, object]] = queue.Queue(READ_AHEAD_CHUNKS)
    stop = threading.Event()

    def deliver(item: Union[bytes, BaseException, object]) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for chunk in response.chunks():
                for piece in transform(chunk):
                    if not deliver(piece):
                        return
            deliver(final())
            deliver(_END)
        except BaseException as error:  # handed over to the consumer
            deliver(error)

    reader = threading.Thread(target=pump, name="hubasync-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = _next_item(chunks, clock, deadline)
            if item is None:
                yield None
                continue
            if item is _END:
                break
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            if item:
                yield item
    finally:
        if reader.is_alive():
            stop.set()
            response.abandon()
            reader.join(timeout=5)


def _next_item(chunks: queue.Queue[Union[bytes, BaseException, object]], clock: Clock,
               deadline: Optional[float]) -> Union[bytes, BaseException, object, None]:
    """The next item, or None after :data:`IO_SLICE` without one."""
    wait = IO_SLICE
    if deadline is not None:
        left = deadline - clock.now()
        if left <= 0:
            raise PageTimeout("the hub sent a page's body too slowly: it took longer than "
                              "--page-timeout")
        wait = min(wait, left)
    try:
        return chunks.get(timeout=wait)
    except queue.Empty:
        return None
