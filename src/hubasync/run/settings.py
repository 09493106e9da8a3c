"""The settings of one run of the downloader, checked: what the command line hands to the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hubasync.core.job import DEFAULT_JOB_TIMEOUT
from hubasync.core.params import Query
from hubasync.core.retry import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from hubasync.core.stalls import DEFAULT_MAX_EMPTY_PAGES
from hubasync.core.urls import ShareUrl
from hubasync.events.splitter import DEFAULT_MAX_EVENT_SIZE
from hubasync.transport.proxy import secrets_of
from hubasync.transport.session import DEFAULT_PAGE_TIMEOUT


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, checked."""

    share: ShareUrl
    apikey: str
    query: Query
    limit: Optional[int] = None
    token: Optional[str] = None
    format: str = "json"
    output: Optional[str] = None
    state: Optional[str] = None
    follow: bool = False
    interval: float = 60.0
    progress: Optional[bool] = None  # None: on a terminal only
    quiet: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    cacert: Optional[str] = None
    debug: bool = False
    recover: bool = False
    strict: bool = False
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    page_timeout: float = DEFAULT_PAGE_TIMEOUT
    max_empty_pages: int = DEFAULT_MAX_EMPTY_PAGES
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    proxy: Optional[str] = None  # None: from the environment; "": none; else the proxy's URL

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no printed line may show: the API key and the proxy's credentials."""
        return (self.apikey, *secrets_of(self.proxy))

    def __repr__(self) -> str:
        return f"RunSettings({self.share.display()!r}, ...)"
