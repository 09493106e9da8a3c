"""Shared pytest fixtures: simulators on free ports, stopped at teardown.

    def test_x(make_sim):
        sim = make_sim(events=2500, faults=["results-reset"])
        ...

    def test_y(sim):   # defaults: events=2500, page_max=1000, job_latency=0
        ...
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, List

import pytest
from hypothesis import settings

from hubasync.sim import SimConfig, Simulator

# every run of the suite tries the same examples: a failure is found again by running again
settings.register_profile("repeatable", derandomize=True, database=None)
settings.load_profile("repeatable")

SIM_DEFAULTS = {"events": 2500, "page_max": 1000, "job_latency": 0.0, "retry_after": 0.05,
                "fault_delay": 0.3}


@pytest.fixture(autouse=True)
def no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process clients read the environment's proxies: no test depends on the machine's."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    """A factory: ``make_sim(**SimConfig fields)`` starts a simulator on a free port.

    Defaults differ from the CLI's to keep tests fast: events=2500, page_max=1000,
    job_latency=0, retry_after=0.05, fault_delay=0.3 (any of them can be overridden).
    """
    started: List[Simulator] = []

    def factory(**overrides: Any) -> Simulator:
        fields = {**SIM_DEFAULTS, **overrides}
        faults = fields.get("faults")
        if isinstance(faults, str):
            fields["faults"] = (faults,)
        elif faults is not None:
            fields["faults"] = tuple(faults)
        sim = Simulator(SimConfig(host="127.0.0.1", port=0, **fields))
        sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Simulator]) -> Simulator:
    """A running simulator with the test defaults (2500 events, pages of at most 1000)."""
    return make_sim()
