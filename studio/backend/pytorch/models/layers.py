"""Building blocks shared by the built-in families.

Every built-in model is a :class:`StudioNet`: an ``nn.Sequential`` of named stages ending in a
``head``. The stage names are the layer names the rest of Studio uses (features for
distillation, freezing, the layer table), and ``feature_names`` lists those usable as features.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch
from torch import nn

from studio.backend.core.errors import ModelError

__all__ = [
    "ACTIVATIONS",
    "StudioNet",
    "activation",
    "ChannelsFirst",
    "SequencePool",
    "RecurrentBlock",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ModelError(
            f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.",
            code="model.bad_hparam",
            field="model.hparams.activation",
            value=name,
        ) from None


class StudioNet(nn.Sequential):
    """Named stages run in order; the last one is ``head``.

    ``feature_names`` are the stage names offered as distillation features (REQ-M16);
    ``head_name`` is what "all but head" keeps trainable (REQ-M17).
    """

    head_name = "head"

    def __init__(
        self, stages: Iterable[tuple[str, nn.Module]] | OrderedDict[str, nn.Module], feature_names: Iterable[str] = ()
    ) -> None:
        stages = OrderedDict(stages)
        super().__init__(stages)
        # slicing (``model[:-1]``) rebuilds through this constructor with only the stages: keep what exists
        names = tuple(n for n in feature_names if n in stages)
        self.feature_names = names or tuple(n for n in stages if n != self.head_name)


class ChannelsFirst(nn.Module):
    """``(batch, length, channels)`` -> ``(batch, channels, length)`` for 1-D convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class SequencePool(nn.Module):
    """Reduce ``(batch, length, width)`` to ``(batch, width)``: ``mean``, ``max``, ``last`` or ``first`` step."""

    MODES = ("mean", "max", "last", "first")

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ModelError(
                f"Unknown pooling {mode!r}; choose one of {', '.join(self.MODES)}.",
                code="model.bad_hparam",
                field="model.hparams.pooling",
            )
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "mean":
            return x.mean(dim=1)
        if self.mode == "max":
            return x.amax(dim=1)
        if self.mode == "first":
            return x[:, 0]
        return x[:, -1]

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class RecurrentBlock(nn.Module):
    """A batch-first GRU or LSTM returning only its output sequence ``(batch, length, width)``."""

    def __init__(
        self, kind: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float
    ) -> None:
        super().__init__()
        cls = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
        self.rnn = cls(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out_features = hidden_size * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out
