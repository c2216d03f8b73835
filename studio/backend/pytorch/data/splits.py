"""Train / validation / test splits (REQ-D05): by fractions, seeded, stratified for classification.

The same data, fractions and seed always give the same indices. Classification (and binary)
data are split class by class so every split keeps the class balance; the per-class counts
are apportioned by largest remainder so the split sizes are exactly ``round(fraction * N)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from studio.backend.core.errors import ValidationError
from studio.backend.pytorch.data.types import DataBundle

__all__ = ["Splits", "validate_fractions", "split_indices", "split_data", "SPLIT_NAMES"]

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Splits:
    """Sorted int64 sample indices of each split."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    seed: int = 0

    def get(self, name: str) -> torch.Tensor:
        if name not in SPLIT_NAMES:
            raise ValidationError(f"There is no split called {name!r}; use train, val or test.", field="split",
                                  value=name)
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {name: int(self.get(name).numel()) for name in SPLIT_NAMES}


def validate_fractions(val_fraction: float, test_fraction: float) -> None:
    """Each fraction in [0, 1) and their sum below 1; the error's ``field`` is ``data.val_fraction`` or ``data.test_fraction``."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value < 1.0:
            raise ValidationError(f"{name} must be a number from 0 up to (not including) 1, not {value!r}.",
                                  field=f"data.{name}", value=value if isinstance(value, (int, float)) else repr(value))
    if val_fraction + test_fraction >= 1.0:
        raise ValidationError(f"val_fraction + test_fraction is {val_fraction + test_fraction:g}; together they must "
                              "stay below 1 to leave data for training.", field="data.test_fraction",
                              value=test_fraction)


def _target_count(fraction: float, n: int) -> int:
    return 0 if fraction == 0 else max(1, round(fraction * n))


def _apportion(total: int, sizes: list[int], caps: list[int]) -> list[int]:
    """Split ``total`` over groups proportionally to ``sizes`` (largest remainder), never above ``caps``."""
    n = sum(sizes)
    if n == 0 or total == 0:
        return [0] * len(sizes)
    quotas = [total * s / n for s in sizes]
    counts = [min(math.floor(q), c) for q, c in zip(quotas, caps)]
    order = sorted(range(len(sizes)), key=lambda k: (-(quotas[k] - math.floor(quotas[k])), k))
    remaining = total - sum(counts)
    while remaining > 0:
        progressed = False
        for k in order:
            if remaining and counts[k] < caps[k]:
                counts[k] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    return counts


def _strata(data: DataBundle) -> torch.Tensor | None:
    if data.task == "classification":
        return data.y
    if data.task == "binary":
        return (data.y[:, 0] > 0.5).to(torch.int64)
    return None


def split_indices(n: int, strata: torch.Tensor | None, val_fraction: float = 0.2, test_fraction: float = 0.0,
                  seed: int = 0) -> Splits:
    """Split ``range(n)``; with ``strata`` (int64 class per sample) each class is split in proportion."""
    validate_fractions(val_fraction, test_fraction)
    n_val, n_test = _target_count(val_fraction, n), _target_count(test_fraction, n)
    if n - n_val - n_test < 1:
        raise ValidationError(f"With {n} samples, val_fraction {val_fraction:g} and test_fraction {test_fraction:g} "
                              "leave nothing to train on; lower the fractions or add data.", field="data.val_fraction",
                              value=val_fraction)
    generator = torch.Generator().manual_seed(int(seed))
    if strata is None:
        groups = [torch.randperm(n, generator=generator)]
    else:
        groups = [idx[torch.randperm(idx.numel(), generator=generator)]
                  for idx in (torch.nonzero(strata == k).flatten() for k in range(int(strata.max()) + 1))]
        groups = [g for g in groups if g.numel()]
    sizes = [int(g.numel()) for g in groups]
    test_counts = _apportion(n_test, sizes, sizes)
    val_counts = _apportion(n_val, sizes, [s - t for s, t in zip(sizes, test_counts)])
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in SPLIT_NAMES}
    for g, t, v in zip(groups, test_counts, val_counts):
        parts["test"].append(g[:t])
        parts["val"].append(g[t:t + v])
        parts["train"].append(g[t + v:])
    out = {name: torch.sort(torch.cat(p)).values if p else torch.empty(0, dtype=torch.int64)
           for name, p in parts.items()}
    return Splits(train=out["train"], val=out["val"], test=out["test"], seed=int(seed))


def split_data(data: DataBundle, val_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0) -> Splits:
    """Split a dataset; classification and binary data are stratified by class."""
    return split_indices(data.num_samples, _strata(data), val_fraction, test_fraction, seed)
