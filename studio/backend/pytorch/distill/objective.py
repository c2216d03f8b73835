"""The distillation objective: hard, soft and feature terms with their weights (REQ-KD02, KD06, KD09, KD11, KD14).

    L = hard_weight * L_task(s, y) + soft_weight * L_soft(s, t) + feature_weight * mean_pairs(L_feature)

``L_soft`` is ``kd`` or ``dkd`` for classification (T^2 inside the loss itself; nothing here
rescales by T), or the ``regression`` loss for regression teachers (no temperature). Binary and
multi-label outputs are distilled label by label, each logit ``z`` as the two-class pair ``[0, z]``.
Weights and the temperature are numbers or :class:`ScheduledValue` s; :meth:`DistillObjective.values`
gives those in force at a step. A term whose weight is 0 at a step is still computed for the
record, without autograd, and adds nothing to the total, so ``soft_weight = 0`` with no feature
pairs trains exactly like the task loss alone (REQ-KD03).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from studio.backend.core.errors import ValidationError
from studio.backend.pytorch.distill.losses import (
    USUAL_TEMPERATURES,
    attention_transfer_loss,
    dkd_loss,
    get_loss,
    kd_loss,
    regression_distill_loss,
)
from studio.backend.pytorch.distill.schedules import ScheduledValue

__all__ = ["DEFAULT_TEMPERATURE", "FEATURE_LOSSES", "LossTerms", "DistillObjective", "agreement", "pair_label",
           "resolve_method"]

DEFAULT_TEMPERATURE = 4.0
FEATURE_LOSSES = ("hint-mse", "hint-cosine", "attention")
CLASS_METHODS = ("kd", "dkd")
_OPTIONS = {"kd": (), "dkd": ("target_weight", "nontarget_weight"), "regression": ("kind", "delta")}

Weight = float | ScheduledValue


@dataclass
class LossTerms:
    """One batch's terms (0-dim tensors): ``total`` carries the gradient; ``features`` per pair label."""

    total: torch.Tensor
    hard: torch.Tensor
    soft: torch.Tensor
    feature: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


def pair_label(student_layer: str, teacher_layer: str) -> str:
    return f"{student_layer}->{teacher_layer}"


def resolve_method(method: Any, task: str) -> str:
    """The soft loss a method names for a task: ``kd``/``dkd`` for classes, ``regression`` for values."""
    if task == "regression":
        if method in ("kd", "regression"):
            return "regression"
        raise ValidationError(f"A regression teacher is distilled with the regression loss, not {method!r}; set "
                              "method to regression (or kd).", field="distill.method", value=method)
    if method == "dkd" and task != "classification":
        raise ValidationError(f"Decoupled KD needs one class per sample; it does not apply to {task} tasks. Use kd.",
                              field="distill.method", value=method)
    if method not in CLASS_METHODS:
        get_loss(method)  # unknown names: request.invalid listing the registry
        raise ValidationError(f"The method {method!r} is not a soft loss; use kd or dkd (feature losses go in "
                              "feature_loss).", field="distill.method", value=method)
    return str(method)


def _scheduled(value: Any, name: str) -> ScheduledValue:
    if isinstance(value, ScheduledValue):
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ValidationError(f"{name} must be a finite number of at least 0, not {value!r}.",
                              field=f"distill.{name}", value=value if ok else repr(value))
    return ScheduledValue.constant(float(value), name)


class DistillObjective:
    """Combines the terms; see the module docstring.

    ``task_loss(output, target)`` is the task's own loss (the trainer's ``TaskLoss``). ``horizon`` is
    ``(steps, epochs)`` of the run, over which scheduled values are checked. Invalid settings raise
    ``ValidationError`` (``request.invalid``) naming the field, before any work. :attr:`notes` lists
    ``(code, message)`` warnings for the run (an unusual temperature, a temperature given to a
    regression teacher).
    """

    def __init__(
        self,
        task_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        method: str = "kd",
        *,
        task: str | None = None,
        hard_weight: Weight = 1.0,
        soft_weight: Weight = 1.0,
        feature_weight: Weight = 0.0,
        temperature: Weight | None = None,
        feature_pairs: Sequence[tuple[str, str]] = (),
        feature_loss: str = "hint-mse",
        method_options: dict[str, Any] | None = None,
        horizon: tuple[int, int] = (1, 1),
    ) -> None:
        self.task_loss = task_loss
        self.task = task or getattr(task_loss, "task", "classification")
        self.method = resolve_method(method, self.task)
        self.notes: list[tuple[str, str]] = []
        self.horizon = (max(1, int(horizon[0])), max(1, int(horizon[1])))
        self.weights = {name: _scheduled(value, name) for name, value in
                        (("hard_weight", hard_weight), ("soft_weight", soft_weight), ("feature_weight", feature_weight))}
        self.pairs = [(str(s), str(t)) for s, t in feature_pairs]
        self.labels = [pair_label(s, t) for s, t in self.pairs]
        if feature_loss not in FEATURE_LOSSES:
            raise ValidationError(f"feature_loss must be one of {', '.join(FEATURE_LOSSES)}, not {feature_loss!r}.",
                                  field="distill.feature_loss", value=feature_loss)
        self.feature_loss = feature_loss
        self.options = self._options(method_options or {})
        self._check_weights()
        self.temperature = self._temperature(temperature)

    # -- validation ------------------------------------------------------------------------
    def _range(self, value: ScheduledValue) -> tuple[float, float]:
        return value.extremes(self.horizon[0] if value.unit == "step" else self.horizon[1])

    def _check_weights(self) -> None:
        highs = {}
        for name, sched in self.weights.items():
            low, high = self._range(sched)
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
                raise ValidationError(f"{name} must stay a finite number of at least 0; its schedule reaches {low:g}.",
                                      field=f"distill.{name}", value=low)
            highs[name] = high
        if not any(highs.values()):
            raise ValidationError("hard_weight, soft_weight and feature_weight are all 0, so nothing would be "
                                  "learned; give at least one a positive weight.", field="distill.soft_weight", value=0.0)
        if highs["feature_weight"] > 0 and not self.pairs:
            raise ValidationError("feature_weight is above 0 but no feature_pairs were given; name the student and "
                                  "teacher layers to match, or set feature_weight to 0.", field="distill.feature_pairs",
                                  value=[])
        if self.pairs and highs["feature_weight"] == 0:
            raise ValidationError("feature_pairs were given but feature_weight is 0, so they would be ignored; give "
                                  "feature_weight a positive value or remove the pairs.", field="distill.feature_weight",
                                  value=0.0)

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(options, dict):
            raise ValidationError("method_options must be an object.", field="distill.method_options")
        allowed = _OPTIONS[self.method]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValidationError(f"The {self.method} method has no option {', '.join(map(repr, unknown))}; its options "
                                  f"are {', '.join(allowed) or 'none'}.", field=f"distill.method_options.{unknown[0]}",
                                  value=unknown)
        out = dict(options)
        for key in ("target_weight", "nontarget_weight", "delta"):
            if key in out:
                v = out[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or \
                        (key == "delta" and v == 0):
                    raise ValidationError(f"method_options.{key} must be a finite number above 0, not {v!r}.",
                                          field=f"distill.method_options.{key}", value=repr(v))
        if "kind" in out and out["kind"] not in ("mse", "l1", "huber"):
            raise ValidationError(f"method_options.kind must be mse, l1 or huber, not {out['kind']!r}.",
                                  field="distill.method_options.kind", value=out["kind"])
        return out

    def _temperature(self, temperature: Weight | None) -> ScheduledValue | None:
        if self.task == "regression":
            if temperature is not None:
                self.notes.append(("distill.temperature_ignored", "A temperature was given but the teacher is a "
                                   "regression model: its outputs are matched directly, without softmax or "
                                   "temperature, so the temperature is ignored."))
            return None
        sched = ScheduledValue.constant(DEFAULT_TEMPERATURE, "temperature") if temperature is None else temperature
        if not isinstance(sched, ScheduledValue):
            ok = isinstance(sched, (int, float)) and not isinstance(sched, bool)
            if not ok or not math.isfinite(sched) or sched <= 0:
                raise ValidationError(f"The temperature must be a finite number above zero, not {sched!r}.",
                                      field="distill.temperature", value=sched if ok else repr(sched),
                                      hint="Use a value from 1 to 20; 4 is a good start.")
            sched = ScheduledValue.constant(float(sched), "temperature")
        low, high = self._range(sched)
        if not (math.isfinite(low) and math.isfinite(high)) or low <= 0:
            raise ValidationError(f"The temperature must stay finite and above zero; its schedule reaches {low:g}.",
                                  field="distill.temperature", value=low)
        lo, hi = USUAL_TEMPERATURES
        if low < lo or high > hi:
            shown = f"{low:g}" if low == high else f"{low:g} to {high:g}"
            self.notes.append(("distill.temperature_unusual", f"The temperature {shown} is outside the usual range "
                               f"[{lo:g}, {hi:g}]; it runs, but soft targets may be too sharp or too flat to help."))
        return sched

    # -- values in force ---------------------------------------------------------------------
    def values(self, step: int = 0, epoch: int = 0) -> dict[str, float]:
        """Temperature (classification only) and weights in force at the 0-based ``step`` of ``epoch``."""
        out = {name: sched.value(step, epoch) for name, sched in self.weights.items()}
        if self.temperature is not None:
            out["temperature"] = self.temperature.value(step, epoch)
        return out

    # -- the terms ---------------------------------------------------------------------------
    def soft_loss(self, student_out: torch.Tensor, teacher_out: torch.Tensor, target: torch.Tensor,
                  temperature: float | None) -> torch.Tensor:
        if self.method == "regression":
            return regression_distill_loss(student_out, teacher_out.reshape(student_out.shape),
                                           kind=self.options.get("kind", "mse"), delta=self.options.get("delta", 1.0))
        T = float(temperature if temperature is not None else DEFAULT_TEMPERATURE)
        if self.method == "dkd":
            return dkd_loss(student_out, teacher_out, target, temperature=T, warn=False,
                            target_weight=self.options.get("target_weight", 1.0),
                            nontarget_weight=self.options.get("nontarget_weight", 8.0))
        if self.task != "classification":  # binary / multi-label: each logit z as the pair [0, z]
            student_out, teacher_out = _pairs(student_out), _pairs(teacher_out.reshape(student_out.shape))
        return kd_loss(student_out, teacher_out, temperature=T, warn=False)

    def feature_losses(self, student_features: dict[str, torch.Tensor], teacher_features: dict[str, torch.Tensor],
                       adapters: Any = None) -> dict[str, torch.Tensor]:
        out = {}
        for i, ((s, t), label) in enumerate(zip(self.pairs, self.labels)):
            fs, ft = student_features[s], teacher_features[t]
            if self.feature_loss == "attention":
                out[label] = attention_transfer_loss(fs, ft)
                continue
            if adapters is not None:
                fs = adapters.adapt(i, fs)
            out[label] = get_loss(self.feature_loss).fn(fs, ft)
        return out

    def __call__(self, student_out: torch.Tensor, teacher_out: torch.Tensor, target: torch.Tensor, *,
                 student_features: dict[str, torch.Tensor] | None = None,
                 teacher_features: dict[str, torch.Tensor] | None = None, adapters: Any = None,
                 step: int = 0, epoch: int = 0, values: dict[str, float] | None = None) -> LossTerms:
        """The terms of one batch; ``values`` (else those in force at ``step``/``epoch``) give the weights."""
        v = values if values is not None else self.values(step, epoch)
        hw, sw, fw = v["hard_weight"], v["soft_weight"], v["feature_weight"]
        parts: list[torch.Tensor] = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and hw != 0):
            hard = self.task_loss(student_out, target)
        if hw != 0:
            parts.append(hard if hw == 1 else hw * hard)
        with torch.set_grad_enabled(torch.is_grad_enabled() and sw != 0):
            soft = self.soft_loss(student_out, teacher_out, target, v.get("temperature"))
        if sw != 0:
            parts.append(sw * soft)
        features: dict[str, torch.Tensor] = {}
        feature = torch.zeros((), device=student_out.device)
        if self.pairs:
            with torch.set_grad_enabled(torch.is_grad_enabled() and fw != 0):
                features = self.feature_losses(student_features or {}, teacher_features or {}, adapters)
                feature = torch.stack(list(features.values())).mean()
            if fw != 0:
                parts.append(fw * feature)
        if parts:
            total = parts[0]
            for p in parts[1:]:
                total = total + p
        else:  # every weight is 0 at this step (a warm-up): a zero loss that still has a graph
            total = student_out.float().sum() * 0.0
        return LossTerms(total, hard.detach(), soft.detach(), feature.detach(),
                         {k: t.detach() for k, t in features.items()})


def _pairs(z: torch.Tensor) -> torch.Tensor:
    z = z.float().reshape(-1)
    return torch.stack((torch.zeros_like(z), z), dim=1)


def agreement(student_out: torch.Tensor, teacher_out: torch.Tensor, task: str) -> torch.Tensor:
    """Share of samples (labels, for binary/multi-label) where student and teacher predict the same (0-dim)."""
    if task == "classification":
        same = student_out.argmax(-1) == teacher_out.argmax(-1)
    elif task in ("binary", "multilabel"):
        same = (student_out > 0) == (teacher_out.reshape(student_out.shape) > 0)
    else:
        return torch.full((), float("nan"))
    return same.float().mean()
