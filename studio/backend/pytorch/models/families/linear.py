"""Linear baseline: logistic regression for classes, linear regression for values (REQ-M03)."""

from __future__ import annotations

from torch import nn

from studio.backend.pytorch.models.families._common import ALL_TASKS, flat_size
from studio.backend.pytorch.models.layers import StudioNet
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param


@register_model(
    "linear",
    description="A single linear layer on the flattened input: logistic regression for classes, "
    "linear regression for values.",
    tasks=ALL_TASKS,
    input_kinds=("vector", "image", "sequence"),
    schema=(Param("bias", "bool", True, help="Learn an offset added to every output."),),
    presets={"tiny": {}, "small": {}, "base": {}},
    recommended_use="The baseline to beat: train it first to see how much a deeper model adds.",
)
def build_linear(input_shape: tuple[int, ...], num_outputs: int, *, bias: bool) -> nn.Module:
    return StudioNet(
        [("flatten", nn.Flatten()), ("head", nn.Linear(flat_size(input_shape), num_outputs, bias=bias))],
        feature_names=("flatten",),
    )
