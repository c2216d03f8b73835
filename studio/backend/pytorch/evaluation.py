"""Metrics of a trained model on a split (REQ-H06).

Classification: loss, accuracy, per-class precision / recall / F1 / support and the confusion
matrix (rows: true class, columns: predicted class). Binary: the same with two classes
(logit > 0 is positive). Multi-label: per-label metrics. Regression: MSE, MAE and R² in the
target's original units, per output averaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["Evaluation", "evaluate_outputs"]


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    per_class: tuple[dict[str, Any], ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    class_names: tuple[str, ...] = ()
    predicted: tuple[int, ...] = field(default=(), repr=False)
    confidence: tuple[float, ...] = field(default=(), repr=False)


def _per_class(confusion: torch.Tensor, names: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    tp = confusion.diag().double()
    predicted = confusion.sum(0).double()
    actual = confusion.sum(1).double()
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-300), torch.zeros_like(tp))
    return tuple(
        {"class": names[i] if i < len(names) else str(i), "precision": float(precision[i]),
         "recall": float(recall[i]), "f1": float(f1[i]), "support": int(actual[i])}
        for i in range(confusion.shape[0])
    )


def _confusion(y: torch.Tensor, pred: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(y.long() * k + pred.long(), minlength=k * k).reshape(k, k)


def evaluate_outputs(task: str, outputs: torch.Tensor, targets: torch.Tensor,
                     class_names: tuple[str, ...] = ()) -> Evaluation:
    """``outputs`` are raw model outputs (logits, or values already in original units)."""
    outputs = outputs.float()
    if task == "classification":
        k = outputs.shape[1]
        y = targets.long()
        loss = float(F.cross_entropy(outputs, y))
        probs = torch.softmax(outputs.double(), dim=1)
        confidence, pred = probs.max(dim=1)
        confusion = _confusion(y, pred, k)
        per_class = _per_class(confusion, class_names)
        metrics = {"loss": loss, "accuracy": float((pred == y).double().mean()),
                   "macro_f1": sum(c["f1"] for c in per_class) / k}
        return Evaluation(metrics, per_class, _tuples(confusion), class_names,
                          tuple(pred.tolist()), tuple(confidence.float().tolist()))
    if task in ("binary", "multilabel"):
        t = targets.float().reshape(outputs.shape)
        loss = float(F.binary_cross_entropy_with_logits(outputs, t))
        pred = (outputs > 0).long()
        metrics = {"loss": loss, "accuracy": float((pred == t.long()).double().mean())}
        if task == "binary":
            confusion = _confusion(t.long().reshape(-1), pred.reshape(-1), 2)
            names = class_names if len(class_names) == 2 else ("negative", "positive")
            per_class = _per_class(confusion, names)
            metrics["macro_f1"] = (per_class[0]["f1"] + per_class[1]["f1"]) / 2
            conf = torch.sigmoid(outputs.reshape(-1))
            conf = torch.where(pred.reshape(-1) == 1, conf, 1 - conf)
            return Evaluation(metrics, per_class, _tuples(confusion), names, tuple(pred.reshape(-1).tolist()),
                              tuple(conf.tolist()))
        rows = []
        for j in range(outputs.shape[1]):
            c = _confusion(t[:, j].long(), pred[:, j], 2)
            rows.append({**_per_class(c, ("0", "1"))[1], "class": class_names[j] if j < len(class_names) else str(j)})
        return Evaluation(metrics, tuple(rows), (), class_names)
    # regression
    t = targets.float().reshape(outputs.shape)
    err = outputs.double() - t.double()
    mse = float((err ** 2).mean())
    mae = float(err.abs().mean())
    ss_res = (err ** 2).sum(0)
    ss_tot = ((t.double() - t.double().mean(0)) ** 2).sum(0)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp(min=1e-300), torch.zeros_like(ss_tot))
    return Evaluation({"loss": mse, "mse": mse, "mae": mae, "r2": float(r2.mean())})


def _tuples(matrix: torch.Tensor) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in row) for row in matrix.tolist())
