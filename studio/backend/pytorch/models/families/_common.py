"""Hyperparameters and helpers that several families share."""

from __future__ import annotations

import math

from studio.backend.core.errors import ModelError
from studio.backend.pytorch.models.schema import Param

ALL_TASKS = ("classification", "regression", "binary", "multilabel")


def dropout_param(default: float = 0.0) -> Param:
    return Param(
        "dropout",
        "float",
        default,
        min=0.0,
        max=0.9,
        help="Share of values randomly zeroed during training to fight over-fitting (0 turns it off).",
    )


def activation_param(default: str = "relu", choices: tuple[str, ...] = ("relu", "gelu", "silu", "tanh")) -> Param:
    return Param(
        "activation",
        "choice",
        default,
        choices=choices,
        help="The non-linearity between layers; relu is a safe first choice.",
    )


def flat_size(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


def require_kind(model: str, input_shape: tuple[int, ...], rank: int, words: str) -> None:
    """Builders call this so a direct builder call with the wrong data fails clearly too."""
    if len(input_shape) != rank:
        raise ModelError(
            f"Model {model!r} takes {words} but was given one sample of shape {input_shape}.",
            code="model.incompatible",
            field="input_shape",
            value=list(input_shape),
        )


def halve(size: int, minimum: int = 2) -> tuple[bool, int]:
    """Whether to downsample a spatial size by 2 (only while it stays at least ``minimum``) and the result."""
    if size // 2 >= minimum:
        return True, size // 2
    return False, size
