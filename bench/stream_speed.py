"""Measure the speed of hubasync.stream: gunzip, split (fast and strict), and both together.

Usage: .venv/bin/python bench/stream_speed.py [--mb 64] [--repeat 3]

Bodies are generated in memory: a JSON array of flat events like the hub's (~350 B each, and
~1.3 KB each with lists, non-ASCII text and escapes), gzip level 6. Every figure is MB/s of
decompressed JSON (1 MB = 10**6 bytes), the best of --repeat runs. Events are dropped chunk by
chunk as a downloader would write them. "chunk" is the size of the pieces fed in: of the JSON
for the split-only rows, of the gzip stream for the rows that decompress.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import zlib
from typing import Callable, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from hubasync.events.decoding import make_decoder
from hubasync.events.splitter import EventSplitter  # noqa: E402

CHUNKS = (64 << 10, 256 << 10, 1 << 20)
TYPES = ("malware infection", "phishing", "open service", "vulnerable service", "scanner")
CATEGORIES = ("suspected compromise", "known vulnerabilities", "public exposure")


def small_event(rnd: random.Random) -> Dict[str, object]:
    return {
        "observation time": f"2024-03-{rnd.randrange(1, 29):02d} 12:{rnd.randrange(60):02d}:00Z",
        "source time": f"2024-03-{rnd.randrange(1, 29):02d} 11:{rnd.randrange(60):02d}:07Z",
        "feed": f"feed-{rnd.randrange(40)}",
        "feed code": "dataplane",
        "type": rnd.choice(TYPES),
        "category": rnd.choice(CATEGORIES),
        "ip": ".".join(str(rnd.randrange(256)) for _ in range(4)),
        "asn": str(rnd.randrange(1, 65000)),
        "as name": "EXAMPLE-NET Example Networks Oy",
        "port": str(rnd.randrange(65536)),
        "uuid": f"{rnd.getrandbits(128):032x}",
    }


def large_event(rnd: random.Random) -> Dict[str, object]:
    event = small_event(rnd)
    event["domain name"] = [f"host{rnd.randrange(10**6)}.example.fi" for _ in range(12)]
    event["url"] = "http://example.fi/" + "/".join(f"p{rnd.randrange(999)}" for _ in range(30))
    event["description"] = (
        'Observed "beaconing" from Ärjänkoski, Mäntsälä via C:\\Users\\x\\malware.exe; '
        + " ".join(f"w{rnd.randrange(10**5)}" for _ in range(60))
    )
    event["organization"] = "Sähkö ja Vesi Oy"
    return event


def make_body(factory: Callable[[random.Random], Dict[str, object]], megabytes: int) -> bytes:
    rnd = random.Random(1)
    parts: List[bytes] = []
    size = 0
    while size < megabytes * 10**6:
        part = json.dumps(factory(rnd)).encode()
        parts.append(part)
        size += len(part) + 2
    return b"[" + b", ".join(parts) + b"]"


def gzip(body: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return z.compress(body) + z.flush()


def pieces(data: bytes, size: int) -> List[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def best(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def split_only(chunks: List[bytes], strict: bool) -> int:
    splitter = EventSplitter(strict=strict)
    for chunk in chunks:
        splitter.feed(chunk)
    splitter.finish()
    return splitter.count


def decompress_only(chunks: List[bytes]) -> None:
    decoder = make_decoder("gzip")
    for chunk in chunks:
        b"".join(decoder.pieces(chunk))
    decoder.finish()


def decompress_split(chunks: List[bytes]) -> int:
    decoder = make_decoder("gzip")
    splitter = EventSplitter()
    for chunk in chunks:
        splitter.feed(b"".join(decoder.pieces(chunk)))
    splitter.feed(decoder.finish())
    splitter.finish()
    return splitter.count


def loads_each(chunks: List[bytes]) -> None:
    splitter = EventSplitter()
    for chunk in chunks:
        for event in splitter.feed(chunk):
            json.loads(event)


def loads_batch(chunks: List[bytes]) -> None:
    splitter = EventSplitter()
    for chunk in chunks:
        json.loads(b"[" + b",".join(splitter.feed(chunk)) + b"]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="MB of JSON per body (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, zlib {zlib.ZLIB_RUNTIME_VERSION}; MB/s of JSON")
    for name, factory in (("~350 B events", small_event), ("~1.3 KB events", large_event)):
        body = make_body(factory, args.mb)
        compressed = gzip(body)
        count = split_only([body], strict=False)
        print(
            f"\n{name}: {count} events, {len(body) / count:.0f} B/event, "
            f"{len(body) / 1e6:.0f} MB JSON, gzip {len(compressed) / 1e6:.1f} MB"
        )
        print(f"{'':34}" + "".join(f"{size >> 10:>7} KiB" for size in CHUNKS))
        rows: Dict[str, Callable[[List[bytes]], object]] = {
            "split (fast)": lambda chunks: split_only(chunks, False),
            "split (strict)": lambda chunks: split_only(chunks, True),
            "zlib decompress alone": decompress_only,
            "decompress + split (fast)": decompress_split,
            "compare: split + json.loads/event": loads_each,
            "compare: split + json.loads/chunk": loads_batch,
        }
        for label, run in rows.items():
            source = compressed if "decompress" in label else body
            cells = []
            for size in CHUNKS:
                chunks = pieces(source, size)
                seconds = best(lambda: run(chunks), args.repeat)  # noqa: B023
                cells.append(f"{len(body) / seconds / 1e6:>11.0f}")
            print(f"{label:34}" + "".join(cells), flush=True)


if __name__ == "__main__":
    main()
