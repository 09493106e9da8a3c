"""Query jobs: created by a POST, done after the job latency, fetched once, expiring after a TTL."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Dict, Optional

from .query import Query

RUNNING = "running"
DONE = "done"
FETCHED = "fetched"
EXPIRED = "expired"
STALE = "stale"


@dataclass
class Job:
    """One posted query. ``share_id`` is the id in the URL; ``target`` the share it reads."""

    jid: str
    share_id: str
    target: str
    query: Query
    created: float
    ready_at: float
    expires_at: float
    fetched: bool = False
    expired: bool = False
    stale: bool = False
    pending_forever: bool = False

    def state(self, now: float) -> str:
        """RUNNING, DONE, FETCHED, EXPIRED or STALE at time ``now``."""
        if self.stale:
            return STALE
        if self.pending_forever:
            return RUNNING
        if self.fetched:
            return FETCHED
        if self.expired or now >= self.expires_at:
            return EXPIRED
        if now < self.ready_at:
            return RUNNING
        return DONE


class JobStore:
    """Thread-safe jobs by id. Jobs are forgotten (404) a while after they expire."""

    def __init__(self, latency: float, ttl: float, keep: float = 600.0) -> None:
        self.latency = latency
        self.ttl = ttl
        self.keep = keep
        self._jobs: Dict[str, Job] = {}
        self._lock = threading.Lock()

    def create(self, share_id: str, target: str, query: Query, now: float) -> Job:
        """A new job, done ``latency`` seconds from ``now``."""
        ready = now + self.latency
        job = Job(uuid.uuid4().hex, share_id, target, query, now, ready, ready + self.ttl)
        with self._lock:
            self._purge(now)
            self._jobs[job.jid] = job
        return job

    def get(self, share_id: str, jid: str) -> Optional[Job]:
        """The job ``jid`` of share ``share_id``, or None."""
        with self._lock:
            job = self._jobs.get(jid)
        if job is None or job.share_id != share_id:
            return None
        return job

    def claim(self, job: Job, now: float) -> str:
        """Atomically read the job's state and, when it is DONE, mark it fetched.

        Returns the state before the call: only one caller ever sees DONE.
        """
        with self._lock:
            state = job.state(now)
            if state == DONE:
                job.fetched = True
            return state

    def remove(self, job: Job) -> None:
        """Forget a job (it "vanished")."""
        with self._lock:
            self._jobs.pop(job.jid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def _purge(self, now: float) -> None:
        for jid in [j.jid for j in self._jobs.values()
                    if now > j.expires_at + self.keep and not j.pending_forever]:
            del self._jobs[jid]
