"""Parameter counts, size in bytes and multiply-accumulates (REQ-M11)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from studio.backend.pytorch.models.probe import first_tensor, probe_forward

__all__ = ["count_parameters", "size_bytes", "model_size_bytes", "estimate_macs"]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts; shared parameters are counted once."""
    params = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return total, trainable


def size_bytes(model: nn.Module) -> int:
    """Bytes held by the parameters and buffers (what a checkpoint of the weights stores)."""
    tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}.values()
    return sum(t.numel() * t.element_size() for t in tensors)


model_size_bytes = size_bytes  # the name used in specs/PT-MODELS-001.md

_GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}


def _rnn_macs(m: nn.RNNBase, x: torch.Tensor) -> int:
    gates = next((g for cls, g in _GATES.items() if isinstance(m, cls)), 1)
    if x.dim() == 2:  # unbatched (length, features)
        batch, length = 1, x.shape[0]
    else:
        batch, length = (x.shape[0], x.shape[1]) if m.batch_first else (x.shape[1], x.shape[0])
    dirs = 2 if m.bidirectional else 1
    hidden = m.proj_size or m.hidden_size
    per_step = 0
    for layer in range(m.num_layers):
        inp = m.input_size if layer == 0 else hidden * dirs
        per_step += dirs * gates * m.hidden_size * (inp + hidden)
        if m.proj_size:
            per_step += dirs * m.hidden_size * m.proj_size
    return batch * length * per_step


def _mha_macs(m: nn.MultiheadAttention, inputs: tuple[Any, ...]) -> int:
    q, k = inputs[0], inputs[1] if len(inputs) > 1 else inputs[0]
    v = inputs[2] if len(inputs) > 2 else k
    if not m.batch_first and q.dim() == 3:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    batch, lq, e = q.shape if q.dim() == 3 else (1, *q.shape)
    ls = k.shape[-2]
    proj = lq * e * e + ls * m.kdim * e + ls * m.vdim * e + lq * e * e
    return batch * (proj + 2 * lq * ls * e)


def _module_macs(m: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    if hasattr(m, "studio_macs"):
        return int(m.studio_macs(inputs, output))
    out = first_tensor(output)
    if isinstance(m, nn.Linear) and out is not None:
        return m.in_features * out.numel()
    if isinstance(m, nn.modules.conv._ConvNd) and out is not None:
        k = math.prod(m.kernel_size)
        if m.transposed:
            return first_tensor(inputs).numel() * (m.out_channels // m.groups) * k  # type: ignore[union-attr]
        return out.numel() * (m.in_channels // m.groups) * k
    if isinstance(m, nn.RNNBase):
        return _rnn_macs(m, first_tensor(inputs))  # type: ignore[arg-type]
    if isinstance(m, nn.MultiheadAttention):
        return _mha_macs(m, inputs)
    return 0


def estimate_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates for one sample, from forward hooks on linear, convolution, recurrent and
    attention layers (element-wise work such as activations and normalisation is not counted)."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal total
        total += _module_macs(m, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if hasattr(m, "studio_macs")
        or isinstance(m, (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase, nn.MultiheadAttention))
    ]
    try:
        probe_forward(model, input_shape, batch=1)
    finally:
        for h in handles:
            h.remove()
    return int(total)
