"""The forward/backward check every model must pass (REQ-M15), also run on user models (REQ-M23)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from studio.backend.core.errors import ModelError
from studio.backend.core.requests import ModelSpec
from studio.backend.pytorch.models.build import build_model
from studio.backend.pytorch.models.registry import get_model_info
from studio.backend.pytorch.models.shapes import dummy_input

__all__ = ["CHECK_SHAPES", "check_model"]

# Small inputs of each kind used when no data are at hand.
CHECK_SHAPES: dict[str, tuple[int, ...]] = {"vector": (7,), "image": (3, 12, 12), "sequence": (9, 3)}


def check_model(
    name: str,
    input_kind: str,
    input_shape: Sequence[int] | None = None,
    num_outputs: int = 3,
    *,
    preset: str | None = None,
    batch: int = 4,
) -> None:
    """Build ``name`` (default preset), run a training-mode forward and backward; raise ``model.check_failed``
    unless the output has shape ``(batch, num_outputs)``, is finite, and every trainable parameter gets a
    finite gradient."""
    info = get_model_info(name)
    if input_shape is not None:
        shape = tuple(input_shape)
    else:
        shape = info.example_shapes.get(input_kind) or CHECK_SHAPES[input_kind]
    model = build_model(ModelSpec(name=name, preset=preset or info.default_preset), shape, num_outputs, seed=0)
    model.train()
    try:
        out = model(dummy_input(shape, batch))
    except Exception as exc:
        raise _failed(name, shape, f"the forward pass raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch, num_outputs):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise _failed(name, shape, f"the output is {got}, not (batch, outputs) = {(batch, num_outputs)}")
    if not torch.isfinite(out).all():
        raise _failed(name, shape, "the output holds NaN or infinite values")
    out.float().square().mean().backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    if missing:
        raise _failed(name, shape, f"no finite gradient reaches {', '.join(missing[:5])}")


def _failed(name: str, shape: tuple[int, ...], why: str) -> ModelError:
    return ModelError(
        f"Model {name!r} failed its forward/backward check on inputs of shape {shape}: {why}.",
        code="model.check_failed",
        field="model.name",
        value=name,
    )
