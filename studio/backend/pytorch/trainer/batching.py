"""In-memory batching by tensor indexing (REQ-T16, REQ-D07).

The order of an epoch is a pure function of ``(seed, epoch)``: a permutation drawn from a
``torch.Generator`` seeded from both, independent of the global random state. Resuming in the
middle of an epoch therefore only needs the epoch and the number of steps done. A step takes
``accumulate`` consecutive micro-batches of ``batch_size`` positions of that order (the last
ones may be short); a batch is gathered with one ``index_select`` per tensor, never per sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["epoch_order", "EpochPlan"]


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The shuffled sample indices of ``epoch`` (int64, on CPU)."""
    mixed = int(np.random.SeedSequence([int(seed) % (1 << 64), int(epoch)]).generate_state(1, np.uint64)[0])
    generator = torch.Generator().manual_seed(mixed & 0x7FFF_FFFF_FFFF_FFFF)
    return torch.randperm(n, generator=generator)


@dataclass(frozen=True)
class EpochPlan:
    """How ``n`` samples split into optimisation steps of ``accumulate`` micro-batches."""

    n: int
    batch_size: int
    accumulate: int = 1

    @property
    def micro_batches(self) -> int:
        return -(-self.n // self.batch_size)

    @property
    def steps(self) -> int:
        return -(-self.micro_batches // self.accumulate)

    def step_batches(self, order: torch.Tensor, start: int = 0) -> Iterator[list[torch.Tensor]]:
        """Yield, from step ``start`` on, each step's micro-batch index tensors (views of ``order``)."""
        span = self.batch_size * self.accumulate
        for first in range(start * span, self.n, span):
            last = min(first + span, self.n)
            yield [order[i:min(i + self.batch_size, last)] for i in range(first, last, self.batch_size)]
