"""The service's turns: a share with many pages does not hold back the others."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, List

from hubasync.service.config import load_config
from hubasync.service.log import ServiceLog
from hubasync.service.metrics import ServiceMetrics
from hubasync.service.scheduler import Service


class Recorded(ServiceMetrics):
    def __init__(self) -> None:
        super().__init__()
        self.order: List[str] = []

    def page(self, share: str, events: int) -> None:
        self.order.append(share)
        super().page(share, events)


def test_shares_take_turns_page_by_page(make_sim: Any, tmp_path: Path) -> None:
    sim = make_sim(shares=3, events=120, page_max=20)
    path = tmp_path / "hubasync.toml"
    path.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\nconcurrency = 1\n'
                    "interval = 60\n" + "".join(
                        f'[shares.s{n}]\nurl = "{sim.url}/shares/v2/async/s{n}"\n'
                        for n in (1, 2, 3)))
    config = load_config(str(path), {"APIKEY": "demo-key"})
    metrics = Recorded()
    service = Service(config, log=ServiceLog(io.StringIO()), once=True, metrics=metrics,
                      turn_seconds=0.0)
    assert service.run() == 0
    assert sorted(metrics.order) == ["s1"] * 6 + ["s2"] * 6 + ["s3"] * 6
    # one worker, a page a turn: each share waits for at most the two others' turns
    for index in range(3, len(metrics.order)):
        assert len(set(metrics.order[index - 3:index])) == 3, metrics.order
    for n in (1, 2, 3):
        with open(tmp_path / f"s{n}.jsonl", encoding="utf-8") as handle:
            assert sum(1 for _ in handle) == 120
