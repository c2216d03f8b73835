"""Learning-rate schedules (REQ-T03).

Every schedule but reduce-on-plateau is a pure function of the optimisation step, so resuming
needs no schedule state beyond the step count; reduce-on-plateau keeps three numbers. The
trainer asks :meth:`Schedule.lr` for the rate of each step before it runs and reports it.

======================  ===========================================================  ========
name                    options (default)                                            unit
======================  ===========================================================  ========
``constant``            none
``step``                ``step_size`` (10), ``gamma`` (0.1)                          epochs
``cosine``              ``warmup_steps`` (0), ``min_lr`` (0.0)                       steps
``one_cycle``           ``max_lr`` (config lr), ``pct_start`` (0.3),                 steps
                        ``div_factor`` (25), ``final_div_factor`` (1e4)
``reduce_on_plateau``   ``factor`` (0.1), ``patience`` (10), ``min_delta`` (0.0),    epochs
                        ``min_lr`` (0.0), ``monitor`` (config monitor), ``mode``
======================  ===========================================================  ========

``cosine`` rises linearly over the warm-up steps to the configured rate, then follows half a
cosine to ``min_lr`` at the last step. ``one_cycle`` matches ``torch.optim.lr_scheduler.OneCycleLR``
(two phases, cosine annealing) without momentum cycling.
"""

from __future__ import annotations

import math
from typing import Any

from studio.backend.core.errors import ValidationError
from studio.backend.core.requests import TrainConfig

__all__ = ["SCHEDULES", "Schedule"]

SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": 10, "gamma": 0.1},
    "cosine": {"warmup_steps": 0, "min_lr": 0.0},
    "one_cycle": {"max_lr": None, "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4},
    "reduce_on_plateau": {"factor": 0.1, "patience": 10, "min_delta": 0.0, "min_lr": 0.0, "monitor": None, "mode": None},
}

# option -> (kind, lower bound, lower bound inclusive, upper bound, upper bound inclusive)
_RANGES: dict[str, tuple[type, float, bool, float, bool]] = {
    "step_size": (int, 1, True, math.inf, False),
    "gamma": (float, 0.0, False, 1.0, True),
    "warmup_steps": (int, 0, True, math.inf, False),
    "min_lr": (float, 0.0, True, math.inf, False),
    "max_lr": (float, 0.0, False, math.inf, False),
    "pct_start": (float, 0.0, False, 1.0, False),
    "div_factor": (float, 0.0, False, math.inf, False),
    "final_div_factor": (float, 0.0, False, math.inf, False),
    "factor": (float, 0.0, False, 1.0, False),
    "patience": (int, 0, True, math.inf, False),
    "min_delta": (float, 0.0, True, math.inf, False),
}


def _check_option(key: str, value: Any) -> None:
    if key == "mode":
        if value not in (None, "min", "max"):
            raise ValidationError(f"schedule_options.mode must be 'min' or 'max', not {value!r}.",
                                  field="schedule_options.mode", value=value)
        return
    if key == "monitor":
        if value is not None and not isinstance(value, str):
            raise ValidationError("schedule_options.monitor must be a metric name such as 'val_loss'.",
                                  field="schedule_options.monitor", value=value)
        return
    if key == "max_lr" and value is None:
        return
    kind, lo, lo_in, hi, hi_in = _RANGES[key]
    ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    ok = ok_type and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= lo if lo_in else value > lo) and (value <= hi if hi_in else value < hi)
    if not ok:
        low = ("[" if lo_in else "(") + f"{lo:g}"
        high = f"{hi:g}" + ("]" if hi_in else ")")
        what = "a whole number" if kind is int else "a number"
        raise ValidationError(f"schedule_options.{key} must be {what} in {low}, {high}, not {value!r}.",
                              field=f"schedule_options.{key}", value=value)


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


class Schedule:
    """The learning rate of each optimisation step; construct with :meth:`from_config`."""

    def __init__(self, name: str, base_lr: float, options: dict[str, Any]) -> None:
        self.name = name
        self.base_lr = float(base_lr)
        self.options = {**SCHEDULES[name], **options}
        self.steps_per_epoch = 1
        self.total_steps = 1
        # reduce-on-plateau state
        self.reductions = 0
        self.best: float | None = None
        self.wait = 0

    @classmethod
    def from_config(cls, config: TrainConfig) -> Schedule:
        """Validate ``config.schedule`` and its options; raise :class:`ValidationError` naming the field."""
        name = config.schedule.lower().replace("-", "_") if isinstance(config.schedule, str) else config.schedule
        if name not in SCHEDULES:
            raise ValidationError(
                f"Unknown learning-rate schedule {config.schedule!r}; choose one of {', '.join(SCHEDULES)}.",
                field="schedule", value=config.schedule,
            )
        options = dict(config.schedule_options or {})
        for key, value in options.items():
            if key not in SCHEDULES[name]:
                allowed = ", ".join(SCHEDULES[name]) or "none"
                raise ValidationError(
                    f"The {name} schedule has no option {key!r}; its options are: {allowed}.",
                    field=f"schedule_options.{key}", value=key,
                )
            _check_option(key, value)
        if name == "cosine" and options.get("min_lr", 0.0) >= config.lr:
            raise ValidationError("schedule_options.min_lr must be below the learning rate.",
                                  field="schedule_options.min_lr", value=options["min_lr"])
        return cls(name, config.lr, options)

    def bind(self, steps_per_epoch: int, epochs: int) -> None:
        """Fix the length of the run (step-based schedules need it)."""
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = max(1, steps_per_epoch * epochs)

    def lr(self, step: int) -> float:
        """The rate of optimisation step ``step`` (0-based)."""
        o, base = self.options, self.base_lr
        if self.name == "constant":
            return base
        if self.name == "step":
            return base * o["gamma"] ** ((step // self.steps_per_epoch) // o["step_size"])
        if self.name == "cosine":
            warm = o["warmup_steps"]
            if step < warm:
                return base * (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, self.total_steps - warm))
            return _anneal_cos(base, o["min_lr"], progress)
        if self.name == "one_cycle":
            return self._one_cycle(min(step, self.total_steps - 1))
        return max(base * o["factor"] ** self.reductions, o["min_lr"])

    def _one_cycle(self, step: int) -> float:
        o = self.options
        peak = o["max_lr"] if o["max_lr"] is not None else self.base_lr
        initial = peak / o["div_factor"]
        final = initial / o["final_div_factor"]
        end_up = float(o["pct_start"] * self.total_steps) - 1
        end_down = float(self.total_steps - 1)
        if step <= end_up:
            start, end, lo, hi = 0.0, end_up, initial, peak
        else:
            start, end, lo, hi = end_up, end_down, peak, final
        pct = (step - start) / (end - start) if end != start else 1.0
        return _anneal_cos(lo, hi, pct)

    def epoch_end(self, value: float, mode: str) -> None:
        """Reduce-on-plateau: count an epoch whose monitored ``value`` did not improve by ``min_delta``."""
        if self.name != "reduce_on_plateau":
            return
        o = self.options
        mode = o["mode"] or mode
        improved = not math.isnan(value) and (
            self.best is None
            or (value < self.best - o["min_delta"] if mode == "min" else value > self.best + o["min_delta"])
        )
        if improved:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait > o["patience"]:
            self.reductions += 1
            self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reductions": self.reductions, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValidationError(
                f"The saved run used the {state.get('name')!r} schedule but this one uses {self.name!r}.",
                field="schedule", value=self.name,
            )
        self.reductions = int(state["reductions"])
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
