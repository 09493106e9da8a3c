"""``hubasync sync --check CONFIG``: is this config ready to run, share by share?

It reads the config as ``sync`` would (every key read, every value checked), checks that its
``directory`` exists and can be written (or could be made), and for each share: that its files
belong to it (a state of this share's command, no output without a state), and that the hub
answers for it, with one count query (one request, no retry). It prints one line a share,
writes and locks nothing, and can run beside the service.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TextIO

from hubasync.core.params import query_url
from hubasync.core.retry import RetryPolicy
from hubasync.errors import ExitCode, HubasyncError
from hubasync.files.state import load_state
from hubasync.run.driving import drive
from hubasync.run.resumable import ResumableRun
from hubasync.service.config import ServiceConfig, ShareConfig
from hubasync.service.scheduler import hub_transport_for, share_settings
from hubasync.transport.session import HubSession

OK, PROBLEM = "ok", "PROBLEM"


def check_config(config: ServiceConfig, out: TextIO) -> int:
    """Check ``config`` (loaded: its keys are read); one line a share on ``out``. Returns
    :data:`ExitCode.OK`, or :data:`ExitCode.USAGE` when anything is wrong."""
    problems = 0
    directory = _directory_problem(config.directory)
    width = max(len("directory"), *(len(share.name) for share in config.shares))
    out.write(f"{'directory':<{width}}  {PROBLEM if directory else OK:<7}  "
              f"{directory or config.directory}\n")
    problems += bool(directory)
    for share in config.shares:
        try:
            line = _check_share(config, share)
            status = OK
        except HubasyncError as error:
            line, status = str(error), PROBLEM
            problems += 1
        out.write(f"{share.name:<{width}}  {status:<7}  {line}\n")
    out.flush()
    return ExitCode.USAGE if problems else ExitCode.OK


def _directory_problem(directory: str) -> str:
    """Why ``directory`` cannot hold the shares' files (empty when it can)."""
    existing = directory
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} cannot be written by this user"
    return ""


def _check_share(config: ServiceConfig, share: ShareConfig) -> str:
    settings = share_settings(config, share)
    run = ResumableRun(settings)
    state = load_state(share.state) if os.path.exists(share.state) else None
    if state is not None and state.fingerprint != run.fingerprint:
        raise HubasyncError(f"state file {share.state} belongs to another command (URL, query, "
                            "format or output differ)")
    if state is None and os.path.exists(share.output) and os.path.getsize(share.output):
        raise HubasyncError(f"{share.output} exists but no state describes it: not this "
                            "share's to write")
    session = HubSession(hub_transport_for(share, settings), policy=RetryPolicy(retries=0),
                         job_timeout=settings.bounds.job_timeout)
    try:
        query = dataclasses.replace(share.query, sort=None, projection=())  # what counts
        job = session.job(query_url(share.url.with_count(True), query))
        count = drive(session.count(job, session.attempts()), session.clock)
    finally:
        session.close()
    written = f"; {state.events:,} written so far" if state else ""
    return f"{count:,} events at {share.url.display()}{written}"
