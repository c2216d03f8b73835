"""Learned adapters from student features to teacher features (REQ-KD12, REQ-KD15).

An adapter maps one student feature to the shape of the teacher feature it imitates:

- the same per-sample shape: identity (nothing to learn);
- vectors ``(d_s,) -> (d_t,)``: ``nn.Linear(d_s, d_t)``;
- maps ``(C_s, H_s, W_s) -> (C_t, H_t, W_t)``: adaptive average pooling to ``H_t x W_t`` (when the
  sizes differ), then a 1x1 ``nn.Conv2d(C_s, C_t)`` (when the channel counts differ);
- anything else (a map to a vector, sequences): flatten, ``nn.Linear``, reshape to the teacher's shape.

Adapters train with the student (their parameters join the optimiser) and are saved in the
training checkpoint, never in the student's own checkpoint or export: they belong to the
distillation, not to the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["make_adapter", "Adapters"]


class _Reshape(nn.Module):
    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


def make_adapter(student_shape: Sequence[int], teacher_shape: Sequence[int]) -> nn.Module:
    """An ``nn.Module`` mapping a batch of student features ``(B, *student_shape)`` to ``(B, *teacher_shape)``."""
    s, t = tuple(int(v) for v in student_shape), tuple(int(v) for v in teacher_shape)
    if s == t:
        return nn.Identity()
    if len(s) == 1 and len(t) == 1:
        return nn.Linear(s[0], t[0])
    if len(s) == 3 and len(t) == 3:
        layers: list[nn.Module] = []
        if s[1:] != t[1:]:
            layers.append(nn.AdaptiveAvgPool2d(t[1:]))
        if s[0] != t[0]:
            layers.append(nn.Conv2d(s[0], t[0], kernel_size=1))
        return layers[0] if len(layers) == 1 else nn.Sequential(*layers)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(s), math.prod(t)), _Reshape(t))


class Adapters(nn.ModuleDict):
    """One adapter per feature pair, in pair order; ``adapters[i]`` adapts pair ``i``.

    Keys are ``pair0``, ``pair1``, ... (layer names may hold dots, which module names may not);
    :attr:`pairs` keeps the ``(student_layer, teacher_layer)`` names."""

    def __init__(self, pairs: Sequence[tuple[str, str]], student_shapes: dict[str, tuple[int, ...]],
                 teacher_shapes: dict[str, tuple[int, ...]], *, learned: bool = True) -> None:
        super().__init__()
        self.pairs = [(str(a), str(b)) for a, b in pairs]
        for i, (s, t) in enumerate(self.pairs):
            self[f"pair{i}"] = make_adapter(student_shapes[s], teacher_shapes[t]) if learned else nn.Identity()

    def adapt(self, i: int, feature: torch.Tensor) -> torch.Tensor:
        return self[f"pair{i}"](feature)
