"""Prototype: where the read-ahead thread's work could go (a measurement for transport/body.py).

    python bench/readahead_proto.py URL [--repeat 3] [--format json]

Downloads every page of a simulator share (``URL`` is its async URL) with the floor's
``http.client`` code, and runs each results body through hubasync's decoder, splitter and
format writer in one of these arrangements, interleaved, printing the median wall time of each:

- ``shipped``: ``hubasync.transport.body.read_ahead`` as shipped: a thread reads and gunzips,
  the main thread splits and writes;
- ``switch``: the same with ``sys.setswitchinterval(0.0005)``;
- ``split-ahead``: the thread reads, gunzips *and splits*; the main thread only writes batches;
- ``serial``: no thread at all (read, gunzip, split, write in turn).

Nothing here is used by hubasync; it measures a change before it is made.
"""

from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from typing import Any, Iterator, List, Optional
from urllib.parse import quote, urljoin

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from floor import Floor  # noqa: E402

from hubasync.core.clock import SystemClock  # noqa: E402
from hubasync.events.decoding import make_decoder  # noqa: E402
from hubasync.events.formats import format_writer  # noqa: E402
from hubasync.events.splitter import Batch, EventSplitter  # noqa: E402
from hubasync.files.output import open_output  # noqa: E402
from hubasync.transport.body import read_ahead  # noqa: E402

CHUNK = 128 * 1024


class _Body:
    """What read_ahead needs of a response: its chunks, and a way to drop it."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    def chunks(self) -> Iterator[bytes]:
        while True:
            data = self.resp.read1(CHUNK)
            if not data:
                return
            yield data

    def abandon(self) -> None:
        self.resp.close()


def pages(floor: Floor, url: str) -> Iterator[Any]:
    """Each page's open results response, in order."""
    token: Optional[str] = None
    while True:
        post = url + (f"?token={quote(token, safe='')}" if token else "")
        resp = floor.request("POST", post)
        resp.read()
        status = urljoin(post, resp.getheader("Location") or "")
        while True:
            resp = floor.request("GET", status)
            resp.read()
            if resp.status == 302:
                break
            time.sleep(0.01)
        resp = floor.request("GET", urljoin(status, resp.getheader("Location") or ""))
        yield resp
        resp.read()
        token = resp.getheader("X-Next-Token")
        if not token:
            return


def split_ahead(body: _Body, splitter: EventSplitter) -> Iterator[Batch]:
    decoder = make_decoder("gzip")
    items: queue.Queue[Any] = queue.Queue(4)
    end = object()

    def pump() -> None:
        try:
            for chunk in body.chunks():
                for piece in decoder.pieces(chunk):
                    items.put(splitter.feed_batch(piece))
            items.put(splitter.feed_batch(decoder.finish()))
            splitter.finish()
            items.put(end)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            items.put(error)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        item = items.get()
        if item is end:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def run(arrangement: str, url: str, fmt: str, path: str) -> float:
    start = time.perf_counter()
    sys.setswitchinterval(0.0005 if arrangement == "switch" else 0.005)
    floor = Floor(url, os.environ.get("APIKEY", "demo-key"))
    writer = format_writer(fmt, open_output(path))
    for resp in pages(floor, url):
        body = _Body(resp)
        splitter = EventSplitter()
        batches: Iterator[Batch]
        if arrangement == "split-ahead":
            batches = split_ahead(body, splitter)
        elif arrangement == "serial":
            decoder = make_decoder("gzip")
            batches = (splitter.feed_batch(piece) for chunk in body.chunks()
                       for piece in [*decoder.pieces(chunk)])
        else:
            decoder = make_decoder("gzip")
            pieces = read_ahead(body, decoder.pieces, decoder.finish,  # type: ignore[arg-type]
                                clock=SystemClock())
            batches = (splitter.feed_batch(piece) for piece in pieces)
        for batch in batches:
            writer.write(batch)
        writer.commit()
    writer.close(complete=True)
    floor.conn.close()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", default="json")
    args = parser.parse_args()
    arrangements = ["shipped", "switch", "split-ahead", "serial"]
    times: dict[str, List[float]] = {a: [] for a in arrangements}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for arrangement in arrangements:
                times[arrangement].append(run(arrangement, args.url, args.format,
                                              os.path.join(tmp, "out")))
    for arrangement, values in times.items():
        print(f"{arrangement:12} median {statistics.median(values):.2f} s "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
