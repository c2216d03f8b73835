"""A small ResNet of basic blocks with configurable depth and width (REQ-M06)."""

from __future__ import annotations

import torch
from torch import nn

from studio.backend.pytorch.models.families._common import ALL_TASKS, dropout_param, halve, require_kind
from studio.backend.pytorch.models.layers import StudioNet
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


@register_model(
    "resnet",
    description="A small residual network: a 3x3 stem, then stages of basic residual blocks, each stage "
    "doubling the width and halving the image, then global average pooling.",
    tasks=ALL_TASKS,
    input_kinds=("image",),
    schema=(
        Param("width", "int", 16, min=4, max=256, help="Number of filters in the first stage; doubles each stage."),
        Param(
            "blocks",
            "int_list",
            [2, 2, 2],
            min=1,
            max=8,
            min_items=1,
            max_items=4,
            help="Number of residual blocks in each stage; the list length is the number of stages.",
        ),
        dropout_param(0.0),
    ),
    presets={
        "tiny": {"width": 8, "blocks": [1, 1, 1]},
        "small": {"width": 16, "blocks": [2, 2, 2]},
        "base": {"width": 32, "blocks": [2, 2, 2]},
    },
    recommended_use="A strong teacher for image tasks; train it first, then distil it into mobilenet.",
)
def build_resnet(
    input_shape: tuple[int, ...], num_outputs: int, *, width: int, blocks: list[int], dropout: float
) -> nn.Module:
    require_kind("resnet", input_shape, 3, "images (channels, height, width)")
    cin, h, w = input_shape
    stages: list[tuple[str, nn.Module]] = [
        ("stem", nn.Sequential(nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()))
    ]
    names = ["stem"]
    c = width
    for i, n in enumerate(blocks, start=1):
        cout = width * 2 ** (i - 1)
        stride = 1
        if i > 1:
            down_h, h2 = halve(h)
            down_w, w2 = halve(w)
            if down_h and down_w:
                stride, h, w = 2, h2, w2
        layer = [BasicBlock(c, cout, stride)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
        stages.append((f"stage{i}", nn.Sequential(*layer)))
        names.append(f"stage{i}")
        c = cout
    stages += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]
    names.append("flatten")
    if dropout > 0:
        stages.append(("dropout", nn.Dropout(dropout)))
    stages.append(("head", nn.Linear(c, num_outputs)))
    return StudioNet(stages, feature_names=names)
