"""hubasync-sim: a local Arctic Hub that speaks the async share API, with faults on demand.

    from hubasync.sim import SimConfig, Simulator
    with Simulator(SimConfig(port=0, events=2500)) as sim:
        print(sim.url)
"""

from __future__ import annotations

from .config import SimConfig
from .faults import ALL_FAULTS, FAULTS, HOSTILE_FAULTS
from .simulator import Simulator
from .stats import Stats

__all__ = ["ALL_FAULTS", "FAULTS", "HOSTILE_FAULTS", "SimConfig", "Simulator", "Stats"]
