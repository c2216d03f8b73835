"""Running statistics of a training epoch (REQ-H22).

Loss and metrics are averaged weighted by batch size, so an epoch's mean equals the mean over
its samples whatever the size of the last batch. Throughput is samples per second of step time.
Plain floats; the trainer converts tensors once per step (or less often) before calling in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

__all__ = ["RunningStats", "EpochSummary"]


@dataclass(frozen=True)
class EpochSummary:
    means: dict[str, float]
    samples: int
    steps: int
    duration_s: float
    samples_per_s: float
    mean_step_time_s: float
    last_lr: float
    last_grad_norm: float | None


@dataclass
class RunningStats:
    """Accumulates one epoch; :meth:`reset` starts the next."""

    clock: object = field(default=time.perf_counter, repr=False)
    _sums: dict[str, float] = field(default_factory=dict)
    _weights: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    steps: int = 0
    step_time_s: float = 0.0
    last_lr: float = math.nan
    last_grad_norm: float | None = None
    _started: float | None = None

    def reset(self) -> None:
        self._sums.clear()
        self._weights.clear()
        self.samples = 0
        self.steps = 0
        self.step_time_s = 0.0
        self.last_lr = math.nan
        self.last_grad_norm = None
        self._started = None

    def update(
        self,
        batch_size: int,
        values: dict[str, float],
        *,
        step_time_s: float = 0.0,
        lr: float | None = None,
        grad_norm: float | None = None,
    ) -> None:
        """Add one step: ``values`` are per-sample means over the batch (loss, accuracy, ...)."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if self._started is None:
            self._started = self.clock()  # type: ignore[operator]
        for name, value in values.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value) * batch_size
            self._weights[name] = self._weights.get(name, 0) + batch_size
        self.samples += batch_size
        self.steps += 1
        self.step_time_s += step_time_s
        if lr is not None:
            self.last_lr = float(lr)
        if grad_norm is not None:
            self.last_grad_norm = float(grad_norm)

    def mean(self, name: str) -> float:
        weight = self._weights.get(name, 0)
        return self._sums[name] / weight if weight else math.nan

    def means(self) -> dict[str, float]:
        return {name: self.mean(name) for name in self._sums}

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.step_time_s if self.step_time_s > 0 else math.nan

    def summary(self) -> EpochSummary:
        return EpochSummary(
            means=self.means(),
            samples=self.samples,
            steps=self.steps,
            duration_s=(self.clock() - self._started) if self._started is not None else 0.0,  # type: ignore[operator]
            samples_per_s=self.samples_per_s,
            mean_step_time_s=self.step_time_s / self.steps if self.steps else math.nan,
            last_lr=self.last_lr,
            last_grad_norm=self.last_grad_norm,
        )
