"""The monitored metric: best epoch and early stopping (REQ-T06, REQ-T07).

One tracker decides both which epoch is "best" (whose weights the trainer keeps) and when to
stop early, so ``restore_best`` restores exactly the epoch early stopping measured against.
Training stops after ``patience`` epochs in a row without improvement (Keras and Lightning semantics).
An epoch improves when its value beats the best so far by more than ``min_delta`` in the
monitored direction; NaN never improves. Without an ``early_stopping`` config the tracker only
keeps the best epoch (``patience`` None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from studio.backend.core.errors import ValidationError
from studio.backend.core.requests import TrainConfig

__all__ = ["EARLY_STOPPING_KEYS", "Tracker"]

EARLY_STOPPING_KEYS = ("monitor", "mode", "patience", "min_delta", "restore_best")


def _check_mode(mode: Any, field: str) -> str:
    if mode not in ("min", "max"):
        raise ValidationError(f"{field} must be 'min' or 'max', not {mode!r}.", field=field, value=mode)
    return mode


@dataclass
class Tracker:
    monitor: str = "val_loss"
    mode: str = "min"
    min_delta: float = 0.0
    patience: int | None = None  # None: never stop early
    restore_best: bool = False
    best: float | None = None
    best_epoch: int = -1
    wait: int = 0
    stopped: bool = False

    @classmethod
    def from_config(cls, config: TrainConfig) -> Tracker:
        es = config.early_stopping
        if es is None:
            return cls(monitor=config.monitor, mode=_check_mode(config.monitor_mode, "monitor_mode"))
        if not isinstance(es, dict):
            raise ValidationError("early_stopping must be a set of options or empty.", field="early_stopping")
        for key in es:
            if key not in EARLY_STOPPING_KEYS:
                raise ValidationError(
                    f"early_stopping has no option {key!r}; its options are {', '.join(EARLY_STOPPING_KEYS)}.",
                    field=f"early_stopping.{key}", value=key,
                )
        patience, min_delta = es.get("patience", 5), es.get("min_delta", 0.0)
        if not (isinstance(patience, int) and not isinstance(patience, bool) and patience >= 0):
            raise ValidationError(f"early_stopping.patience must be a whole number >= 0, not {patience!r}.",
                                  field="early_stopping.patience", value=patience)
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValidationError(f"early_stopping.min_delta must be >= 0, not {min_delta!r}.",
                                  field="early_stopping.min_delta", value=min_delta)
        restore = es.get("restore_best", True)
        if not isinstance(restore, bool):
            raise ValidationError("early_stopping.restore_best must be true or false.",
                                  field="early_stopping.restore_best", value=restore)
        monitor = es.get("monitor", config.monitor)
        mode = _check_mode(es.get("mode", config.monitor_mode), "early_stopping.mode")
        return cls(monitor=monitor, mode=mode, min_delta=float(min_delta), patience=patience, restore_best=restore)

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record an epoch's monitored value; return whether it is the new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        if self.patience is not None and self.wait >= self.patience:
            self.stopped = True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch,
                "wait": self.wait, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch, self.wait, self.stopped = int(state["best_epoch"]), int(state["wait"]), bool(state["stopped"])
