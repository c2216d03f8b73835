"""What :meth:`Trainer.fit` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FitResult"]


@dataclass(frozen=True)
class FitResult:
    """The outcome of a run.

    ``status`` is ``"finished"`` (all epochs, or stopped early) or ``"cancelled"`` (the state
    reached is kept: ``steps`` optimisation steps). ``history`` has one dict per completed epoch,
    including epochs run before a resume: ``epoch`` (0-based), ``step``, ``lr`` (of the epoch's
    last step), ``train_loss``, ``train_<metric>``, ``val_loss``, ``val_<metric>``.
    ``best_metrics`` is the history entry of ``best_epoch`` (-1 when no epoch completed) by the
    monitored metric; ``final_metrics`` the last entry.
    """

    status: str
    epochs_run: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metrics: dict[str, Any] = field(default_factory=dict)
    best_epoch: int = -1
    final_metrics: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False
    monitor: str = "val_loss"
    precision: str = "fp32"
    duration_s: float = 0.0
