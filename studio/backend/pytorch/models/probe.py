"""One forward pass on a dummy input, for summaries, feature shapes and MACs.

The pass runs in eval mode under no-grad on the model's own device and dtype, and puts the
model back in the mode it was in; the global random state is not touched.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from studio.backend.pytorch.models.shapes import dummy_input

__all__ = ["eval_mode", "probe_forward", "first_tensor", "per_sample_shape"]


def _device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def probe_forward(model: nn.Module, input_shape: Sequence[int], batch: int = 1) -> Any:
    """Run ``model`` once on a reproducible dummy batch; hooks registered beforehand see the pass."""
    device, dtype = _device_dtype(model)
    x = dummy_input(input_shape, batch, dtype=dtype, device=device)
    with eval_mode(model), torch.no_grad():
        return model(x)


def first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor itself, or the first tensor inside a tuple/list output (RNN layers return tuples)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v)
            if t is not None:
                return t
    return None


def per_sample_shape(value: Any) -> list[int]:
    t = first_tensor(value)
    return list(t.shape[1:]) if t is not None else []
