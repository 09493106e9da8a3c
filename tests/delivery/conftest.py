"""Fixtures of the delivery tests: TLS material; destinations closed after each test."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from receivers.certs import Certs, make_certs


@pytest.fixture(autouse=True)
def destinations_closed() -> Iterator[None]:
    """Every destination a test opened through ``helpers.destination`` is closed after it."""
    from .helpers import close_opened

    yield
    close_opened()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certs]:
    yield make_certs(str(tmp_path_factory.mktemp("certs")))
