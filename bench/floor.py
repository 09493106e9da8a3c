"""The floor of bench/run.py: the least any client of the async share API must do.

    python bench/floor.py ASYNC_URL OUTPUT [--latency SECONDS] [--apikey KEY]

For each page: POST the query, poll the status URL at the moment the job is done, GET the results,
gunzip them chunk by chunk and write the decompressed bytes to OUTPUT; then follow
``X-Next-Token`` until it is absent. One kept-alive ``http.client`` connection, standard library
only. It parses nothing: no JSON, no events, no output format. The bytes still have to reach the
disk, since delivering them is the least a downloader does.

Polling is ideal, not realistic: the floor is told the job latency (``--latency``), sleeps exactly
that long after the POST is accepted, then polls every 10 ms until the 302, ignoring
``Retry-After``. This is the "client that polls the moment the job is done" that PROTOCOL.md
compares the vendor's clients against. It retries nothing; any unexpected answer is an error
(exit status 1).
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time
import zlib
from typing import BinaryIO, Dict, Optional
from urllib.parse import quote, urljoin, urlsplit

CHUNK = 256 * 1024
POLL_INTERVAL = 0.01


class Floor:
    """One kept-alive connection to the hub, with the request headers every request carries."""

    def __init__(self, url: str, apikey: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.netloc, timeout=120)
        else:
            self.conn = http.client.HTTPConnection(parts.netloc, timeout=120)
        self.headers: Dict[str, str] = {
            "Authorization": f"token {apikey}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": "hubasync-bench-floor",
        }

    def request(self, method: str, url: str) -> http.client.HTTPResponse:
        """Send one request on the kept-alive connection; the response is not read yet."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request(method, target, headers=self.headers)
        return self.conn.getresponse()

    def page(self, url: str, token: Optional[str], latency: float, out: BinaryIO) -> Optional[str]:
        """Fetch one page into ``out`` (a binary file); return the next token, if any."""
        post_url = url + (f"?token={quote(token, safe='')}" if token else "")
        resp = self.request("POST", post_url)
        resp.read()
        if resp.status != 202:
            raise RuntimeError(f"POST {post_url}: {resp.status} {resp.reason}")
        status_url = urljoin(post_url, resp.getheader("Location") or "")
        if latency > 0:
            time.sleep(latency)
        while True:
            resp = self.request("GET", status_url)
            resp.read()
            if resp.status == 302:
                break
            if resp.status != 202:
                raise RuntimeError(f"GET {status_url}: {resp.status} {resp.reason}")
            time.sleep(POLL_INTERVAL)
        results_url = urljoin(status_url, resp.getheader("Location") or "")
        resp = self.request("GET", results_url)
        if resp.status != 200:
            resp.read()
            raise RuntimeError(f"GET {results_url}: {resp.status} {resp.reason}")
        write = out.write
        if (resp.getheader("Content-Encoding") or "").lower() == "gzip":
            inflate = zlib.decompressobj(31)
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                write(inflate.decompress(chunk))
            write(inflate.flush())
            if not inflate.eof:
                raise RuntimeError(f"GET {results_url}: truncated gzip stream")
        else:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                write(chunk)
        return resp.getheader("X-Next-Token")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url", help="the async URL of the share, e.g. http://HOST/shares/v2/async/demo")
    parser.add_argument("output", help="file to write the decompressed bytes to")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="the job latency: sleep this long after the POST before polling")
    parser.add_argument("--apikey", default=os.environ.get("APIKEY", "demo-key"))
    args = parser.parse_args()
    floor = Floor(args.url, args.apikey)
    token: Optional[str] = None
    with open(args.output, "wb") as out:
        while True:
            token = floor.page(args.url, token, args.latency, out)
            if token is None:
                break
    floor.conn.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, RuntimeError, http.client.HTTPException) as exc:
        print(f"floor: {exc}", file=sys.stderr)
        sys.exit(1)
