"""Batched inference in input order, in eval mode under inference mode (REQ-T17, REQ-T18).

Memory is bounded by the batch size: inputs stay where they are and only one batch at a time
moves to the device; outputs come back to the CPU batch by batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from studio.backend.core.errors import ValidationError

__all__ = ["run_model", "iter_outputs", "probabilities"]


def iter_outputs(module: nn.Module, x: torch.Tensor, batch_size: int = 256,
                 device: torch.device | str | None = None) -> Iterator[torch.Tensor]:
    """Yield the model's outputs batch by batch; restores the model's previous mode afterwards."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a whole number above zero, not {batch_size!r}.",
                              field="batch_size", value=batch_size)
    if device is None:
        first = next(module.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                batch = x[start:start + batch_size].to(device, non_blocking=True)
                yield module(batch).float().cpu()
    finally:
        module.train(was_training)


def run_model(module: nn.Module, x: torch.Tensor, batch_size: int = 256,
              device: torch.device | str | None = None) -> torch.Tensor:
    """All outputs, in input order (``(N, outputs)``)."""
    parts = list(iter_outputs(module, x, batch_size, device))
    if not parts:
        return torch.empty(0)
    return torch.cat(parts)


def probabilities(task: str, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities: softmax for classification, sigmoid per label for binary/multi-label."""
    if task == "classification":
        return torch.softmax(logits.double(), dim=1).float()
    return torch.sigmoid(logits)
