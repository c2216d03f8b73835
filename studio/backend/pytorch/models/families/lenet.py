"""LeNet-style CNN for any image of at least 8x8 pixels and any channel count (REQ-M05)."""

from __future__ import annotations

from torch import nn

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.families._common import (
    ALL_TASKS,
    activation_param,
    dropout_param,
    halve,
    require_kind,
)
from studio.backend.pytorch.models.layers import StudioNet
from studio.backend.pytorch.models.layers import activation as make_activation
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param

MIN_SIDE = 8


@register_model(
    "lenet",
    description="A LeNet-style convolutional network: 5x5 convolutions with max pooling, an adaptive "
    "average pool to a fixed grid, then fully connected layers.",
    tasks=ALL_TASKS,
    input_kinds=("image",),
    schema=(
        Param(
            "channels",
            "int_list",
            [6, 16],
            min=1,
            max=512,
            min_items=1,
            max_items=4,
            help="Number of filters in each convolution stage; each stage halves the image while it can.",
        ),
        Param(
            "hidden",
            "int_list",
            [120, 84],
            min=1,
            max=4096,
            min_items=0,
            max_items=4,
            help="Width of the fully connected layers before the output layer.",
        ),
        Param("pool_size", "int", 4, min=1, max=16, help="Side of the grid the feature maps are pooled to."),
        activation_param("relu"),
        dropout_param(0.0),
    ),
    presets={
        "tiny": {"channels": [4, 8], "hidden": [32]},
        "small": {"channels": [6, 16], "hidden": [120, 84]},
        "base": {"channels": [32, 64], "hidden": [256, 128], "dropout": 0.2},
    },
    recommended_use="Small grayscale or colour images such as digits; quick to train and easy to read.",
)
def build_lenet(
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    channels: list[int],
    hidden: list[int],
    pool_size: int,
    activation: str,
    dropout: float,
) -> nn.Module:
    require_kind("lenet", input_shape, 3, "images (channels, height, width)")
    c, h, w = input_shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ModelError(
            f"Model 'lenet' needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, not {h}x{w}; "
            "resize the images or pick mlp.",
            code="model.incompatible",
            field="input_shape",
            value=list(input_shape),
        )
    stages: list[tuple[str, nn.Module]] = []
    names = []
    for i, out in enumerate(channels, start=1):
        layers: list[nn.Module] = [nn.Conv2d(c, out, kernel_size=5, padding=2), make_activation(activation)]
        pool_h, h2 = halve(h, 1)
        pool_w, w2 = halve(w, 1)
        if pool_h and pool_w:
            layers.append(nn.MaxPool2d(2))
            h, w = h2, w2
        stages.append((f"conv{i}", nn.Sequential(*layers)))
        names.append(f"conv{i}")
        c = out
    grid = (min(pool_size, h), min(pool_size, w))
    stages += [("pool", nn.AdaptiveAvgPool2d(grid)), ("flatten", nn.Flatten())]
    width = c * grid[0] * grid[1]
    for i, size in enumerate(hidden, start=1):
        layers = [nn.Linear(width, size), make_activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        stages.append((f"fc{i}", nn.Sequential(*layers)))
        names.append(f"fc{i}")
        width = size
    stages.append(("head", nn.Linear(width, num_outputs)))
    return StudioNet(stages, feature_names=names)
