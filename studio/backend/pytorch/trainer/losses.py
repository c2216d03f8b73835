"""Losses and the headline metric of each task (REQ-T04).

========================  ====================================  ===================  ==========
task                      losses (first is the default)         target               metric
========================  ====================================  ===================  ==========
``classification``        ``cross_entropy`` (label smoothing,   class index (N,)     accuracy
                          class weights)
``regression``            ``mse``, ``l1``, ``huber`` (delta 1)  value(s) (N,) (N,k)  mae
``binary``                ``bce_with_logits``                   0/1 (N,) or (N,1)    accuracy
``multilabel``            ``bce_with_logits``                   0/1 (N,L)            accuracy
========================  ====================================  ===================  ==========

Losses are means over the batch. :meth:`TaskLoss.weight` is what that mean divides by (the
sample count, or the sum of the targets' class weights for weighted cross-entropy), so the
trainer can split a step into micro-batches and still get the loss of the whole step exactly
(REQ-T09). Binary and multi-label accuracy thresholds the logits at 0 and is averaged over
labels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from studio.backend.core.errors import ValidationError
from studio.backend.core.requests import TrainConfig

__all__ = ["TASKS", "LOSSES", "METRICS", "TaskLoss"]

TASKS = ("classification", "regression", "binary", "multilabel")
LOSSES: dict[str, tuple[str, ...]] = {
    "classification": ("cross_entropy",),
    "regression": ("mse", "l1", "huber"),
    "binary": ("bce_with_logits",),
    "multilabel": ("bce_with_logits",),
}
METRICS = {"classification": "accuracy", "regression": "mae", "binary": "accuracy", "multilabel": "accuracy"}


def check_task(task: Any) -> str:
    if task not in TASKS:
        raise ValidationError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.", field="task", value=task)
    return task


class TaskLoss:
    """The loss of one task: ``loss(output, target)`` is the batch mean."""

    def __init__(self, task: str, config: TrainConfig) -> None:
        self.task = check_task(task)
        self.name = config.loss if config.loss is not None else LOSSES[task][0]
        self.metric = METRICS[task]
        if self.name not in LOSSES[task]:
            raise ValidationError(
                f"The loss {config.loss!r} does not fit a {task} task; use one of {', '.join(LOSSES[task])}.",
                field="loss", value=config.loss,
            )
        ls = config.label_smoothing
        if not (isinstance(ls, (int, float)) and not isinstance(ls, bool) and 0 <= ls < 1):
            raise ValidationError(f"label_smoothing must be in [0, 1), not {ls!r}.", field="label_smoothing", value=ls)
        if ls and self.name != "cross_entropy":
            raise ValidationError("Label smoothing applies only to cross-entropy (classification).",
                                  field="label_smoothing", value=ls)
        self.label_smoothing = float(ls)
        self.class_weights: torch.Tensor | None = None
        if config.class_weights is not None:
            weights = list(config.class_weights)
            if self.name != "cross_entropy":
                raise ValidationError("Class weights apply only to cross-entropy (classification).",
                                      field="class_weights", value=weights)
            if not weights or not all(isinstance(w, (int, float)) and math.isfinite(w) and w > 0 for w in weights):
                raise ValidationError("Class weights must be positive numbers, one per class.",
                                      field="class_weights", value=weights)
            self.class_weights = torch.tensor(weights, dtype=torch.float32)

    def to(self, device: torch.device) -> TaskLoss:
        if self.class_weights is not None:
            self.class_weights = self.class_weights.to(device)
        return self

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.dtype != torch.float32:
            output = output.float()  # the loss is computed in fp32 whatever the autocast dtype
        if self.name == "cross_entropy":
            return F.cross_entropy(output, target, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if target.shape != output.shape:
            target = target.reshape(output.shape)
        if self.name == "mse":
            return F.mse_loss(output, target)
        if self.name == "l1":
            return F.l1_loss(output, target)
        if self.name == "huber":
            return F.huber_loss(output, target)
        return F.binary_cross_entropy_with_logits(output, target)

    def metric_total(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum of the task's metric (correct predictions, or absolute errors) as a 0-dim tensor.

        Records no autograd graph; divide by :meth:`metric_count` for the mean."""
        if self.task == "classification":
            return torch.count_nonzero(output.argmax(-1) == target)
        output = output.detach()
        if target.shape != output.shape:
            target = target.reshape(output.shape)
        if self.task == "regression":
            return (output.float() - target).abs().sum()
        return torch.count_nonzero((output > 0) == (target > 0.5))

    def metric_count(self, target: torch.Tensor) -> int:
        """How many values :meth:`metric_total` sums: samples (classification) or target elements."""
        return len(target) if self.task == "classification" else target.numel()

    def weight(self, target: torch.Tensor) -> torch.Tensor | int:
        """What the batch mean divides by: the sample count, or the sum of the targets' class weights."""
        if self.class_weights is not None:
            return self.class_weights.index_select(0, target).sum()
        return len(target)

    def prepare_target(self, y: torch.Tensor, where: str, dtype: torch.dtype) -> torch.Tensor:
        """Check a whole target tensor once and give it the dtype the loss expects."""
        if self.task == "classification":
            if y.dim() != 1:
                raise ValidationError(f"Classification targets ({where}) must be class indices of shape (N,), "
                                      f"not {tuple(y.shape)}.", field=where, value=list(y.shape))
            if y.is_floating_point() or y.dtype == torch.bool:
                if not torch.equal(y, y.round()):
                    raise ValidationError(f"Classification targets ({where}) must be whole class indices.",
                                          field=where)
            y = y.long()
            if len(y) and int(y.min()) < 0:
                raise ValidationError(f"Class indices ({where}) must not be negative.", field=where, value=int(y.min()))
            if self.class_weights is not None and len(y) and int(y.max()) >= len(self.class_weights):
                raise ValidationError(
                    f"{len(self.class_weights)} class weights were given but {where} has class {int(y.max())}.",
                    field="class_weights", value=self.class_weights.tolist(),
                )
            return y
        return y.to(dtype)
