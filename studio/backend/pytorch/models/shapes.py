"""Input shapes and kinds (REQ-M19).

Shapes are per sample, without the batch axis: ``(features,)`` for vectors,
``(channels, height, width)`` for images and ``(length, channels)`` for sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from studio.backend.core.errors import ModelError

__all__ = ["KIND_BY_RANK", "input_kind_of", "check_input_shape", "check_num_outputs", "dummy_input"]

KIND_BY_RANK = {1: "vector", 2: "sequence", 3: "image"}
SHAPE_WORDS = {"vector": "(features,)", "image": "(channels, height, width)", "sequence": "(length, channels)"}


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints, or ``model.bad_input``."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) not in KIND_BY_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise ModelError(
            f"Input shape {input_shape!r} is not usable; give one sample's shape without the batch axis: "
            + ", ".join(f"{k} {w}" for k, w in SHAPE_WORDS.items())
            + ", every size a positive whole number.",
            code="model.bad_input",
            field="input_shape",
            value=repr(input_shape),
        )
    return shape


def input_kind_of(input_shape: Sequence[int]) -> str:
    """``vector``, ``sequence`` or ``image`` from the number of axes of one sample."""
    return KIND_BY_RANK[len(check_input_shape(input_shape))]


def check_num_outputs(num_outputs: int) -> int:
    if not isinstance(num_outputs, int) or isinstance(num_outputs, bool) or num_outputs < 1:
        raise ModelError(
            f"The number of outputs must be a whole number of at least 1, not {num_outputs!r}.",
            code="model.bad_outputs",
            field="num_outputs",
            value=repr(num_outputs),
        )
    return num_outputs


def dummy_input(
    input_shape: Sequence[int],
    batch: int = 2,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> torch.Tensor:
    """A reproducible random batch of the given per-sample shape; the global RNG is not touched."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *check_input_shape(input_shape)), generator=gen)
    return x.to(device=device, dtype=dtype)
