"""The vendor's library in bench/run.py: download a whole share with ``arcticsecurity`` 0.2.x.

    python bench/vendor_client.py SYNC_URL OUTPUT [--pagesize N]

SYNC_URL is the share's URL as the hub's UI hands it out (``.../shares/v2/:id?apikey=KEY``),
which is what the library takes. This is the library's documented use, nothing more: iterate
``Query(url).query(pagesize=N)`` (it posts, polls and pages through ``X-Next-Token`` itself) and
write every event it yields to OUTPUT as one JSON array, an event a line. ``allow_insecure`` is
set because the simulator speaks plain http on loopback.

Exit status 0 when done, 1 on any error of the library (printed on stderr), 3 when the library
is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url", help="the share's sync URL with ?apikey=KEY")
    parser.add_argument("output", help="file to write the events to, as a JSON array")
    parser.add_argument("--pagesize", type=int, default=100_000,
                        help="events a query (the library's limit; default %(default)s)")
    args = parser.parse_args()
    try:
        from arcticsecurity.sharing_api import Query
    except ImportError as exc:
        print(f"vendor_client: arcticsecurity is not available: {exc}", file=sys.stderr)
        return 3
    events = Query(args.url, allow_insecure=True).query(pagesize=args.pagesize)
    with open(args.output, "w", encoding="utf-8") as out:
        out.write("[")
        separator = "\n"
        for event in events:
            out.write(separator)
            out.write(json.dumps(event))
            separator = ",\n"
        out.write("\n]\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # the library's errors, reported as one line
        print(f"vendor_client: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
