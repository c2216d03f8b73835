"""Schedules for the temperature and the loss weights, with a warm-up of the soft term (REQ-KD10).

A :class:`ScheduledValue` is a pure function of the position in the run: the optimisation step
(0-based, the step about to be taken) or the epoch, by its ``unit``. Nothing else is kept, so a
resumed run, which restores the trainer's step and epoch, reports and uses the same values as
the uninterrupted one. Closed forms, with ``t`` the step or epoch and ``u = min(t / length, 1)``:

    constant   v = start
    step       v = start * gamma ** floor(t / step_size)
    linear     v = start + (end - start) * u
    cosine     v = end + (start - end) * (1 + cos(pi * u)) / 2
    warm-up    v = v * min(t / warmup, 1)          (ramps linearly from 0; warmup in the same unit)

``DistillConfig.schedules`` maps a name (``temperature``, ``hard_weight``, ``soft_weight``,
``feature_weight``) to ``{"kind", "start", "end", "unit", "length", "step_size", "gamma", "warmup"}``;
``start`` defaults to the configured value, ``length`` to the whole run in the chosen unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from studio.backend.core.errors import ValidationError

__all__ = ["KINDS", "SCHEDULED", "ScheduledValue", "build_schedules"]

KINDS = ("constant", "step", "linear", "cosine")
SCHEDULED = ("temperature", "hard_weight", "soft_weight", "feature_weight")
_KEYS = ("kind", "start", "end", "unit", "length", "step_size", "gamma", "warmup")


def _number(value: Any, field: str, *, positive: bool = False, whole: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and whole:
        ok = float(value).is_integer()
    if not ok or (positive and value <= 0) or value < 0:
        what = "a whole number" if whole else "a finite number"
        bound = "above zero" if positive else "of at least zero"
        raise ValidationError(f"{field} must be {what} {bound}, not {value!r}.", field=field,
                              value=value if ok else repr(value))
    return float(value)


@dataclass(frozen=True)
class ScheduledValue:
    """A value that follows a schedule over steps or epochs (see the module docstring)."""

    kind: Literal["constant", "step", "linear", "cosine"]
    start: float
    end: float | None = None
    unit: Literal["step", "epoch"] = "step"
    length: int | None = None
    step_size: int | None = None
    gamma: float | None = None
    warmup: int = 0
    name: str = "value"

    def __post_init__(self) -> None:
        where = f"distill.schedules.{self.name}"
        if self.kind not in KINDS:
            raise ValidationError(f"{where}.kind must be one of {', '.join(KINDS)}, not {self.kind!r}.",
                                  field=f"{where}.kind", value=self.kind)
        if self.unit not in ("step", "epoch"):
            raise ValidationError(f"{where}.unit must be step or epoch, not {self.unit!r}.", field=f"{where}.unit",
                                  value=self.unit)
        _number(self.start, f"{where}.start")
        if self.end is not None:
            _number(self.end, f"{where}.end")
        if self.kind in ("linear", "cosine"):
            if self.end is None:
                raise ValidationError(f"A {self.kind} schedule needs an end value ({where}.end).", field=f"{where}.end")
            if self.length is None:
                raise ValidationError(f"A {self.kind} schedule needs a length ({where}.length).",
                                      field=f"{where}.length")
            _number(self.length, f"{where}.length", positive=True, whole=True)
        if self.kind == "step":
            _number(self.step_size, f"{where}.step_size", positive=True, whole=True)
            _number(self.gamma, f"{where}.gamma", positive=True)
        _number(self.warmup, f"{where}.warmup", whole=True)

    def base(self, t: int) -> float:
        """The scheduled value at position ``t`` before any warm-up."""
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "step":
            assert self.step_size is not None and self.gamma is not None
            return float(self.start) * float(self.gamma) ** (t // int(self.step_size))
        assert self.end is not None and self.length is not None
        u = min(t / int(self.length), 1.0)
        if self.kind == "linear":
            return float(self.start) + (float(self.end) - float(self.start)) * u
        return float(self.end) + (float(self.start) - float(self.end)) * (1.0 + math.cos(math.pi * u)) / 2.0

    def value(self, step: int, epoch: int) -> float:
        """The value in force at the 0-based ``step`` of the run, in 0-based ``epoch``."""
        t = step if self.unit == "step" else epoch
        v = self.base(t)
        if self.warmup > 0 and t < self.warmup:
            v *= t / self.warmup
        return v

    def extremes(self, horizon: int) -> tuple[float, float]:
        """The smallest and largest value taken at positions 0..horizon (warm-up included)."""
        if self.kind == "step":
            assert self.step_size is not None
            values = [self.base(k * int(self.step_size)) for k in range(horizon // int(self.step_size) + 1)]
        else:
            values = [self.base(0), self.base(horizon)]
        if self.warmup > 0:
            values.append(0.0)
        return min(values), max(values)

    @classmethod
    def constant(cls, value: float, name: str = "value") -> ScheduledValue:
        return cls("constant", float(value), name=name)

    @classmethod
    def from_spec(cls, name: str, spec: Any, default: float, *, steps: int, epochs: int) -> ScheduledValue:
        """Build from one entry of ``DistillConfig.schedules``; ``steps``/``epochs`` give the default length."""
        where = f"distill.schedules.{name}"
        if not isinstance(spec, dict):
            raise ValidationError(f"{where} must be an object such as {{\"kind\": \"linear\", \"end\": 1}}, "
                                  f"not {spec!r}.", field=where, value=repr(spec))
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValidationError(f"{where} has no setting {', '.join(map(repr, unknown))}; use {', '.join(_KEYS)}.",
                                  field=f"{where}.{unknown[0]}", value=unknown)
        unit = spec.get("unit", "step")
        length = spec.get("length")
        if length is None and spec.get("kind") in ("linear", "cosine"):
            length = max(1, steps if unit == "step" else epochs)
        return cls(kind=spec.get("kind", "constant"), start=spec.get("start", default), end=spec.get("end"),
                   unit=unit, length=length, step_size=spec.get("step_size"), gamma=spec.get("gamma"),
                   warmup=spec.get("warmup", 0), name=name)


def build_schedules(schedules: Any, defaults: dict[str, float], *, steps: int, epochs: int) -> dict[str, ScheduledValue]:
    """One :class:`ScheduledValue` per name of :data:`SCHEDULED` (constant where no schedule is given).

    ``steps`` is the run's total number of optimisation steps, ``epochs`` its epochs. Unknown names
    and bad settings are ``request.invalid`` naming the field; the temperature takes no warm-up.
    """
    schedules = schedules or {}
    if not isinstance(schedules, dict):
        raise ValidationError("distill.schedules must be an object of name: schedule.", field="distill.schedules")
    unknown = sorted(set(schedules) - set(SCHEDULED))
    if unknown:
        raise ValidationError(f"Cannot schedule {', '.join(map(repr, unknown))}; schedulable values are "
                              f"{', '.join(SCHEDULED)}.", field=f"distill.schedules.{unknown[0]}", value=unknown)
    out = {}
    for name in SCHEDULED:
        if name in schedules:
            out[name] = ScheduledValue.from_spec(name, schedules[name], defaults[name], steps=steps, epochs=epochs)
        else:
            out[name] = ScheduledValue.constant(defaults[name], name)
    if out["temperature"].warmup:
        raise ValidationError("The temperature cannot warm up from zero; warm up soft_weight instead.",
                              field="distill.schedules.temperature.warmup", value=out["temperature"].warmup)
    return out
