"""A small Transformer encoder for sequences (REQ-M09).

Pre-norm encoder blocks (self-attention then a feed-forward layer, each with a residual),
a positional encoding sized to the data's sequence length, and a pooled head. Attention uses
``scaled_dot_product_attention``, which exports to ONNX and runs in bfloat16 on CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.families._common import ALL_TASKS, activation_param, dropout_param, require_kind
from studio.backend.pytorch.models.layers import SequencePool, StudioNet
from studio.backend.pytorch.models.layers import activation as make_activation
from studio.backend.pytorch.models.registry import register_model
from studio.backend.pytorch.models.schema import Param


class PositionalEncoding(nn.Module):
    """Adds position information: fixed sinusoids, a learned table, or nothing."""

    def __init__(self, length: int, width: int, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.table: nn.Parameter | None = None
        if kind == "learned":
            self.table = nn.Parameter(torch.randn(1, length, width) * 0.02)
        elif kind == "sinusoidal":
            pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
            freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
            table = torch.zeros(1, length, width)
            table[0, :, 0::2] = torch.sin(pos * freq)
            table[0, :, 1::2] = torch.cos(pos * freq[: width // 2])
            self.register_buffer("sinusoids", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.table is not None:
            return x + self.table.to(x.dtype)
        if self.kind == "sinusoidal":
            return x + self.sinusoids.to(x.dtype)
        return x

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


class ClassToken(nn.Module):
    """Puts one learned "summary" step in front of every sequence; the head reads its final state."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 1, width) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``(batch, length, width)``."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).flatten(2))

    def studio_macs(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Multiply-adds of the two attention products (the projections are counted as Linear layers)."""
        batch, length, width = inputs[0].shape
        return 2 * batch * length * length * width


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int, ff_mult: int, dropout: float, act: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(
            nn.Linear(width, ff_mult * width), make_activation(act), nn.Linear(ff_mult * width, width)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.ff(self.norm2(x)))


@register_model(
    "transformer",
    description="A small Transformer encoder: a linear embedding of each step, a positional encoding, "
    "self-attention blocks and a pooled output layer.",
    tasks=ALL_TASKS,
    input_kinds=("sequence",),
    schema=(
        Param("d_model", "int", 64, min=8, max=1024, help="Size of each step's representation; a multiple of heads."),
        Param("depth", "int", 2, min=1, max=12, help="Number of encoder blocks."),
        Param("heads", "int", 4, min=1, max=16, help="Attention heads per block; must divide d_model."),
        Param("ff_mult", "int", 2, min=1, max=8, help="Feed-forward layer width as a multiple of d_model."),
        Param(
            "positional",
            "choice",
            "sinusoidal",
            choices=("sinusoidal", "learned", "none"),
            help="How step positions are encoded: fixed sinusoids, a learned table, or not at all.",
        ),
        Param(
            "pooling",
            "choice",
            "mean",
            choices=("mean", "max", "cls"),
            help="How the steps become one vector: their mean, their maximum, or a learned summary step (cls).",
        ),
        activation_param("gelu"),
        dropout_param(0.1),
    ),
    presets={
        "tiny": {"d_model": 32, "depth": 1, "heads": 2},
        "small": {"d_model": 64, "depth": 2, "heads": 4},
        "base": {"d_model": 128, "depth": 4, "heads": 8},
    },
    recommended_use="Sequences where any step may matter to any other; a strong teacher for cnn1d.",
)
def build_transformer(
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    d_model: int,
    depth: int,
    heads: int,
    ff_mult: int,
    positional: str,
    pooling: str,
    activation: str,
    dropout: float,
) -> nn.Module:
    require_kind("transformer", input_shape, 2, "sequences (length, channels)")
    width = d_model
    if width % heads:
        valid = [h for h in range(1, 17) if width % h == 0]
        raise ModelError(
            f"Model 'transformer' needs heads to divide d_model {width}; {heads} does not. "
            f"Valid head counts for this d_model are {valid}.",
            code="model.bad_hparam",
            field="model.hparams.heads",
            value=heads,
        )
    length, channels = input_shape
    stages: list[tuple[str, nn.Module]] = [("embed", nn.Linear(channels, width))]
    if pooling == "cls":
        stages.append(("cls", ClassToken(width)))
        length += 1
    stages.append(("position", PositionalEncoding(length, width, positional)))
    names = ["embed"]
    for i in range(1, depth + 1):
        stages.append((f"block{i}", EncoderBlock(width, heads, ff_mult, dropout, activation)))
        names.append(f"block{i}")
    stages += [("norm", nn.LayerNorm(width)), ("pool", SequencePool("first" if pooling == "cls" else pooling))]
    names.append("pool")
    if dropout > 0:
        stages.append(("dropout", nn.Dropout(dropout)))
    stages.append(("head", nn.Linear(width, num_outputs)))
    return StudioNet(stages, feature_names=names)
