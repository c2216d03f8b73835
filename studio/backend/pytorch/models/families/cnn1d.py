"""1-D convolutional network for sequences and time series (REQ-M08)."""

from __future__ import annotations

from torch import nn

from studio.backend.pytorch.models.families._common import (
    ALL_TASKS,
    activation_param,
    dropout_param,
    halve,
    require_kind,
)
from studio.backend.pytorch.models.layers import ChannelsFirst, StudioNet
from studio.backend.pytorch.models.layers import activation as make_activation
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param


@register_model(
    "cnn1d",
    description="Stages of 1-D convolutions along the time axis, each with optional batch norm and max pooling, "
    "then global average pooling over time.",
    tasks=ALL_TASKS,
    input_kinds=("sequence",),
    schema=(
        Param(
            "channels",
            "int_list",
            [32, 64],
            min=1,
            max=1024,
            min_items=1,
            max_items=6,
            help="Number of filters in each stage; each stage halves the sequence while it can.",
        ),
        Param("kernel_size", "int", 5, min=1, max=31, help="How many time steps each filter looks at."),
        Param("batch_norm", "bool", True, help="Normalise each stage with batch norm (steadier training)."),
        activation_param("relu"),
        dropout_param(0.0),
    ),
    presets={
        "tiny": {"channels": [16], "kernel_size": 3},
        "small": {"channels": [32, 64]},
        "base": {"channels": [64, 128, 128], "kernel_size": 7, "dropout": 0.1},
    },
    recommended_use="The default for time series and sensor sequences: fast, and a good student for a "
    "gru, lstm or transformer teacher.",
)
def build_cnn1d(
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    channels: list[int],
    kernel_size: int,
    batch_norm: bool,
    activation: str,
    dropout: float,
) -> nn.Module:
    require_kind("cnn1d", input_shape, 2, "sequences (length, channels)")
    length, c = input_shape
    stages: list[tuple[str, nn.Module]] = [("to_channels", ChannelsFirst())]
    names = []
    for i, cout in enumerate(channels, start=1):
        layers: list[nn.Module] = [nn.Conv1d(c, cout, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
        length = length + 2 * (kernel_size // 2) - kernel_size + 1
        if batch_norm:
            layers.append(nn.BatchNorm1d(cout))
        layers.append(make_activation(activation))
        down, length2 = halve(length, 1)
        if down:
            layers.append(nn.MaxPool1d(2))
            length = length2
        stages.append((f"conv{i}", nn.Sequential(*layers)))
        names.append(f"conv{i}")
        c = cout
    stages += [("pool", nn.AdaptiveAvgPool1d(1)), ("flatten", nn.Flatten())]
    names.append("flatten")
    if dropout > 0:
        stages.append(("dropout", nn.Dropout(dropout)))
    stages.append(("head", nn.Linear(c, num_outputs)))
    return StudioNet(stages, feature_names=names)
