"""``stats_memory_mb_1m``: memory of the chart history after 1,000,000 steps (goal <= 50 MB).

Measured with tracemalloc around feeding a million step records (loss, learning rate,
throughput: three series, as the window keeps them) in delivery-sized batches.
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from studio.backend.core.stats_delivery import ChartHistory


def measure(steps: int = 1_000_000, batch: int = 1000) -> float:
    tracemalloc.start()
    series = {name: ChartHistory() for name in ("loss", "lr", "throughput")}
    rng = np.random.default_rng(0)
    for start in range(0, steps, batch):
        x = np.arange(start + 1, start + batch + 1, dtype=np.float64)
        for history in series.values():
            history.extend(x, rng.random(batch))
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert all(len(h) == steps for h in series.values())
    return current / 1e6


def run(quick: bool = False) -> dict:
    mb = measure()
    return {"stats_memory_mb_1m": {"value": round(mb, 3), "unit": "MB", "goal": "<= 50",
                                   "reference": "1,000,000 steps x 3 series held by ChartHistory"}}
