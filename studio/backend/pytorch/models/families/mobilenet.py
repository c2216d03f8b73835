"""MobileNet-style depthwise-separable CNN, the default small student for images (REQ-M07)."""

from __future__ import annotations

from torch import nn

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


class DepthwiseSeparable(nn.Sequential):
    """A 3x3 depthwise convolution (one filter per channel) then a 1x1 pointwise one, each with batch norm."""

    def __init__(self, cin: int, cout: int, stride: int, act: str) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = make_activation(act)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = make_activation(act)


@register_model(
    "mobilenet",
    description="A MobileNet-style network of depthwise-separable convolutions: few parameters and "
    "multiply-adds for its accuracy.",
    tasks=ALL_TASKS,
    input_kinds=("image",),
    schema=(
        Param(
            "channels",
            "int_list",
            [16, 32, 64],
            min=1,
            max=1024,
            min_items=1,
            max_items=6,
            help="Number of filters in each stage; every stage after the first halves the image while it can.",
        ),
        Param("blocks", "int", 1, min=1, max=6, help="Depthwise-separable blocks per stage."),
        Param(
            "width_mult",
            "float",
            1.0,
            min=0.25,
            max=4.0,
            help="Multiplies every stage's number of filters: below 1 for a smaller, faster model.",
        ),
        activation_param("relu6", ("relu6", "relu", "silu", "hardswish")),
        dropout_param(0.0),
    ),
    presets={
        "tiny": {"channels": [8, 16, 32]},
        "small": {"channels": [16, 32, 64]},
        "base": {"channels": [32, 64, 128, 256], "blocks": 2, "dropout": 0.1},
    },
    recommended_use="The default small student for image tasks: distil a resnet into it for a model "
    "that runs fast on a laptop or phone.",
)
def build_mobilenet(
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    channels: list[int],
    blocks: int,
    width_mult: float,
    activation: str,
    dropout: float,
) -> nn.Module:
    require_kind("mobilenet", input_shape, 3, "images (channels, height, width)")
    cin, h, w = input_shape
    channels = [max(1, round(c * width_mult)) for c in channels]
    c = channels[0]
    stages: list[tuple[str, nn.Module]] = [
        (
            "stem",
            nn.Sequential(nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), make_activation(activation)),
        )
    ]
    names = ["stem"]
    for i, cout in enumerate(channels, start=1):
        stride = 1
        if i > 1:
            down_h, h2 = halve(h)
            down_w, w2 = halve(w)
            if down_h and down_w:
                stride, h, w = 2, h2, w2
        layer = [DepthwiseSeparable(c, cout, stride, activation)]
        layer += [DepthwiseSeparable(cout, cout, 1, activation) for _ in range(blocks - 1)]
        stages.append((f"stage{i}", nn.Sequential(*layer)))
        names.append(f"stage{i}")
        c = cout
    stages += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    names.append("flatten")
    if dropout > 0:
        stages.append(("dropout", nn.Dropout(dropout)))
    stages.append(("head", nn.Linear(c, num_outputs)))
    return StudioNet(stages, feature_names=names)
