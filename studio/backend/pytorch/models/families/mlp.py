"""Multi-layer perceptron on the flattened input (REQ-M04)."""

from __future__ import annotations

from torch import nn

from studio.backend.pytorch.models.families._common import ALL_TASKS, activation_param, dropout_param, flat_size
from studio.backend.pytorch.models.layers import StudioNet
from studio.backend.pytorch.models.layers import activation as make_activation
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param

NORMS = ("none", "batch", "layer")


def _norm(kind: str, width: int) -> nn.Module | None:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return None


@register_model(
    "mlp",
    description="Fully connected layers on the flattened input, each followed by an optional normalisation, "
    "a non-linearity and dropout.",
    tasks=ALL_TASKS,
    input_kinds=("vector", "image", "sequence"),
    schema=(
        Param(
            "hidden",
            "int_list",
            [128, 64],
            min=1,
            max=8192,
            min_items=0,
            max_items=8,
            help="Width of each hidden layer, first to last; an empty list gives a linear model.",
        ),
        activation_param("relu"),
        dropout_param(0.0),
        Param("norm", "choice", "none", choices=NORMS, help="Normalise each hidden layer: none, batch or layer."),
    ),
    presets={
        "tiny": {"hidden": [32]},
        "small": {"hidden": [128, 64]},
        "base": {"hidden": [512, 256, 128], "dropout": 0.1},
    },
    recommended_use="Tables of numbers (features) and small flattened images; the default for tabular data.",
)
def build_mlp(
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    hidden: list[int],
    activation: str,
    dropout: float,
    norm: str,
) -> nn.Module:
    stages: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    width = flat_size(input_shape)
    names = []
    for i, size in enumerate(hidden, start=1):
        layers: list[nn.Module] = [nn.Linear(width, size)]
        n = _norm(norm, size)
        if n is not None:
            layers.append(n)
        layers.append(make_activation(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        stages.append((f"hidden{i}", nn.Sequential(*layers)))
        names.append(f"hidden{i}")
        width = size
    stages.append(("head", nn.Linear(width, num_outputs)))
    return StudioNet(stages, feature_names=names or ["flatten"])
