"""Replay hubasync's PollPlanner against jobs of a known duration: the waiting it costs.

    python bench/poll_replay.py [--pages 20] [--retry-after 1] [DURATION ...]

For each job duration (seconds, default 0 0.05 0.3 0.45 1.5 3), 20 pages are "polled" the way
``core/job.py`` drives the planner: the first status poll at ``first_delay()`` after the POST,
then, while the job is still running, again ``Retry-After`` later (plus a 1 ms round trip); the
job's bounds are recorded. Printed: the time spent beyond the job's duration over all pages
(what a client told the duration would not wait), and the pages whose first poll came early.
No network, no clock: the same figures on any machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from hubasync.core.polling import JobTiming, PollPlanner  # noqa: E402

ROUND_TRIP = 0.001


def replay(duration: float, pages: int, retry_after: float) -> Tuple[float, List[int]]:
    planner = PollPlanner()
    planner.retry_after = retry_after
    waited, early = 0.0, []
    for page in range(pages):
        poll = planner.first_delay()
        lower = 0.0
        if poll < duration:
            early.append(page + 1)
        while poll + ROUND_TRIP / 2 < duration:
            lower, poll = poll, poll + ROUND_TRIP + retry_after
        planner.record(JobTiming(lower, poll))
        waited += poll - duration
    return waited, early


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("durations", nargs="*", type=float,
                        default=[0.0, 0.05, 0.3, 0.45, 1.5, 3.0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--retry-after", type=float, default=1.0)
    args = parser.parse_args()
    for duration in args.durations:
        waited, early = replay(duration, args.pages, args.retry_after)
        print(f"jobs of {duration:g} s: {waited:.2f} s waited beyond them over {args.pages} "
              f"pages; early first polls on pages {early or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
