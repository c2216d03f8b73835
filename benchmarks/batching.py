"""``batching_speedup``: one epoch of the trainer's batching against ``DataLoader(TensorDataset)``.

Studio's side is exactly what ``Trainer`` does per epoch (``trainer/batching.py``): the seeded
``epoch_order``, ``EpochPlan.step_batches`` and one ``index_select`` per tensor per batch. Both
sides produce the same-sized shuffled batches of digits-sized data (input 1x8x8, batch 64) and
touch every batch (a sum), so the work compared is batching alone. Interleaved A B A B after a
warm-up; the figure is the median DataLoader time over the median Studio time (goal >= 10).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from studio.backend.pytorch.trainer.batching import EpochPlan, epoch_order


class _TrainerBatches:
    """The trainer's per-epoch batching of in-memory tensors, without the step."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        self.x, self.y, self.seed = x, y, seed
        self.plan = EpochPlan(len(x), batch_size)

    def epoch(self, epoch: int):  # noqa: ANN201 - a generator of batches
        for micro in self.plan.step_batches(epoch_order(self.seed, epoch, len(self.x))):
            for index in micro:
                yield self.x.index_select(0, index), self.y.index_select(0, index)


def _studio_epoch(batches: _TrainerBatches, epoch: int) -> float:
    total = 0.0
    for xb, _ in batches.epoch(epoch):
        total += float(xb[0, 0, 0, 0])
    return total


def _loader_epoch(loader: DataLoader) -> float:
    total = 0.0
    for xb, _ in loader:
        total += float(xb[0, 0, 0, 0])
    return total


def measure(n: int = 1797, batch_size: int = 64, repeats: int = 15) -> dict:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((n, 1, 8, 8), generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    batches = _TrainerBatches(x, y, batch_size)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    _studio_epoch(batches, 0)
    _loader_epoch(loader)
    studio, reference = [], []
    for epoch in range(repeats):
        t0 = time.perf_counter()
        _studio_epoch(batches, epoch)
        studio.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _loader_epoch(loader)
        reference.append(time.perf_counter() - t0)
    s, r = statistics.median(studio), statistics.median(reference)
    return {"studio_ms": s * 1e3, "dataloader_ms": r * 1e3, "speedup": r / s}


def run(quick: bool = False) -> dict:
    torch.set_num_threads(1)
    small = measure(repeats=31)  # an epoch here takes about a millisecond: medians need many repeats
    large = measure(n=20_000, batch_size=256, repeats=3 if quick else 7)
    return {"batching_speedup": {
        "value": round(small["speedup"], 2), "unit": "x", "goal": ">= 10",
        "reference": "DataLoader(TensorDataset) per epoch, digits-sized data, batch 64",
        "detail": {"digits_1797x64": small, "n20000_batch256": large},
    }}


if __name__ == "__main__":
    print(run())
