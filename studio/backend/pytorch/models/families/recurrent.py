"""GRU and LSTM models for sequences and time series (REQ-M08)."""

from __future__ import annotations

from torch import nn

from studio.backend.pytorch.models.families._common import ALL_TASKS, dropout_param, require_kind
from studio.backend.pytorch.models.layers import RecurrentBlock, SequencePool, StudioNet
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param

SCHEMA = (
    Param("hidden_size", "int", 64, min=2, max=2048, help="Size of the memory carried from step to step."),
    Param("num_layers", "int", 1, min=1, max=4, help="Recurrent layers stacked on top of each other."),
    Param("bidirectional", "bool", False, help="Also read each sequence backwards (doubles the width)."),
    Param(
        "pooling",
        "choice",
        "last",
        choices=("last", "mean", "max"),
        help="How the per-step outputs become one vector: the last step, the mean or the maximum over steps.",
    ),
    dropout_param(0.0),
)
PRESETS = {
    "tiny": {"hidden_size": 16},
    "small": {"hidden_size": 64},
    "base": {"hidden_size": 128, "num_layers": 2, "dropout": 0.1},
}


def _build(
    kind: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    pooling: str,
    dropout: float,
) -> nn.Module:
    require_kind(kind, input_shape, 2, "sequences (length, channels)")
    rnn = RecurrentBlock(kind, input_shape[1], hidden_size, num_layers, bidirectional, dropout)
    stages: list[tuple[str, nn.Module]] = [("rnn", rnn), ("pool", SequencePool(pooling))]
    if dropout > 0:
        stages.append(("dropout", nn.Dropout(dropout)))
    stages.append(("head", nn.Linear(rnn.out_features, num_outputs)))
    return StudioNet(stages, feature_names=("rnn", "pool"))


@register_model(
    "gru",
    description="A gated recurrent unit (GRU) network that reads the sequence step by step.",
    tasks=ALL_TASKS,
    input_kinds=("sequence",),
    schema=SCHEMA,
    presets=PRESETS,
    recommended_use="Sequences where order and long-range memory matter; a little lighter than lstm.",
)
def build_gru(input_shape: tuple[int, ...], num_outputs: int, **hparams: object) -> nn.Module:
    return _build("gru", input_shape, num_outputs, **hparams)  # type: ignore[arg-type]


@register_model(
    "lstm",
    description="A long short-term memory (LSTM) network that reads the sequence step by step.",
    tasks=ALL_TASKS,
    input_kinds=("sequence",),
    schema=SCHEMA,
    presets=PRESETS,
    recommended_use="Longer sequences that need a long memory; a classic teacher for time series.",
)
def build_lstm(input_shape: tuple[int, ...], num_outputs: int, **hparams: object) -> nn.Module:
    return _build("lstm", input_shape, num_outputs, **hparams)  # type: ignore[arg-type]
