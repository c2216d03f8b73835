"""Normalisation fitted on the training split only (REQ-D06), stored with the model.

:class:`Preprocessing` is a JSON contract (``to_dict`` / ``from_dict``) so it travels in a
checkpoint's metadata and is applied unchanged at prediction:

- vector inputs: per-feature mean and standard deviation;
- images: per-channel mean and standard deviation (over every pixel of the training images);
- sequences: per-channel (last axis) mean and standard deviation;
- regression targets: per-output mean and standard deviation (``apply_target`` before the
  loss, ``inverse_target`` on predictions).

A standard deviation below 1e-8 (a constant column) is stored as 1 so nothing divides by zero.
``encoding`` carries a CSV table's column encoding (see :mod:`tabular`) for prediction on files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from studio.backend.core.contract import Contract
from studio.backend.core.errors import DataError
from studio.backend.pytorch.data.types import DataBundle

__all__ = ["Preprocessing", "fit_preprocessing"]

_EPS = 1e-8


@dataclass(frozen=True)
class Preprocessing(Contract):
    input_kind: str
    input_shape: tuple[int, ...]
    x_mean: tuple[float, ...] = ()
    x_std: tuple[float, ...] = ()
    y_mean: tuple[float, ...] = ()
    y_std: tuple[float, ...] = ()
    encoding: dict[str, Any] = field(default_factory=dict)

    def _stats_shape(self) -> tuple[int, ...]:
        if self.input_kind == "image":
            return (len(self.x_mean), 1, 1)
        return (len(self.x_mean),)

    def check_inputs(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != tuple(self.input_shape):
            raise DataError(f"Inputs are shaped {tuple(x.shape[1:])} per sample but the model was trained on "
                            f"{tuple(self.input_shape)}; convert them to that shape.", code="data.bad_shape",
                            field="inputs", value=list(x.shape))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise a batch ``(N, *input_shape)``; returns float32."""
        self.check_inputs(x)
        x = x.to(torch.float32)
        if not self.x_mean:
            return x
        shape = self._stats_shape()
        mean = torch.tensor(self.x_mean, dtype=torch.float32, device=x.device).reshape(shape)
        std = torch.tensor(self.x_std, dtype=torch.float32, device=x.device).reshape(shape)
        return (x - mean) / std

    def apply_target(self, y: torch.Tensor) -> torch.Tensor:
        if not self.y_mean:
            return y
        mean = torch.tensor(self.y_mean, dtype=torch.float32, device=y.device)
        std = torch.tensor(self.y_std, dtype=torch.float32, device=y.device)
        return (y.to(torch.float32) - mean) / std

    def inverse_target(self, y: torch.Tensor) -> torch.Tensor:
        """Map model outputs back to the target's original units (identity when targets were not scaled)."""
        if not self.y_mean:
            return y
        mean = torch.tensor(self.y_mean, dtype=torch.float32, device=y.device)
        std = torch.tensor(self.y_std, dtype=torch.float32, device=y.device)
        return y.to(torch.float32) * std + mean


def _moments(total: torch.Tensor, total_sq: torch.Tensor, count: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std < _EPS, torch.ones_like(std), std)
    return tuple(float(v) for v in mean.tolist()), tuple(float(v) for v in std.tolist())


def _reduce_dims(input_kind: str, ndim: int) -> tuple[int, ...]:
    if input_kind == "image":
        return (0, 2, 3)
    if input_kind == "sequence":
        return tuple(range(ndim - 1))
    return (0,)


def fit_preprocessing(data: DataBundle, train_indices: torch.Tensor, *, normalize_inputs: bool = True,
                      scale_targets: bool = True, batch_size: int = 256, workers: int = 0) -> Preprocessing:
    """Fit the statistics on ``train_indices`` only; the other splits never influence them."""
    if train_indices.numel() == 0:
        raise DataError("The training split is empty; lower the validation and test fractions.",
                        code="data.empty", field="val_fraction")
    x_mean: tuple[float, ...] = ()
    x_std: tuple[float, ...] = ()
    if normalize_inputs:
        if data.in_memory:
            x = data.x[train_indices].to(torch.float64)  # type: ignore[union-attr]
            dims = _reduce_dims(data.input_kind, x.dim())
            count = x.numel() // (x.shape[1] if data.input_kind != "sequence" else x.shape[-1])
            x_mean, x_std = _moments(x.sum(dim=dims), (x * x).sum(dim=dims), count)
        else:
            from studio.backend.pytorch.data.disk_images import DiskImageBatches

            total = torch.zeros(data.input_shape[0], dtype=torch.float64)
            total_sq = torch.zeros_like(total)
            count = 0
            for xb, _ in DiskImageBatches(data, train_indices, batch_size, shuffle=False, workers=workers).epoch(0):
                xb = xb.to(torch.float64)
                total += xb.sum(dim=(0, 2, 3))
                total_sq += (xb * xb).sum(dim=(0, 2, 3))
                count += xb.numel() // xb.shape[1]
            x_mean, x_std = _moments(total, total_sq, count)
    y_mean: tuple[float, ...] = ()
    y_std: tuple[float, ...] = ()
    if scale_targets and data.task == "regression":
        y = data.y[train_indices].to(torch.float64)
        y_mean, y_std = _moments(y.sum(dim=0), (y * y).sum(dim=0), y.shape[0])
    encoding = dict(data.info.get("encoding", {})) if data.source == "csv" else {}
    return Preprocessing(input_kind=data.input_kind, input_shape=tuple(data.input_shape), x_mean=x_mean, x_std=x_std,
                         y_mean=y_mean, y_std=y_std, encoding=encoding)
