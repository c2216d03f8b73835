"""Layer table and the model summary contract (REQ-M11, REQ-M12, REQ-M16)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from studio.backend.core.requests import ModelSpec
from studio.backend.core.results import ModelSummary
from studio.backend.pytorch.models.build import as_spec, build_model
from studio.backend.pytorch.models.features import feature_layers
from studio.backend.pytorch.models.probe import per_sample_shape, probe_forward
from studio.backend.pytorch.models.registry import get_model_info
from studio.backend.pytorch.models.schema import schema_to_json
from studio.backend.pytorch.models.stats import count_parameters, estimate_macs, size_bytes

__all__ = ["layer_summary", "summarize_model", "summarize_built"]


def layer_summary(model: nn.Module, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One row per layer reached by a dummy forward pass, in definition order.

    Each row: ``name``, ``type``, ``output_shape`` (per sample), ``params`` (including sub-layers),
    ``depth`` (1 for top-level layers; the top-level ``params`` sum to the model's total when the
    model holds no parameters of its own).
    """
    shapes: dict[str, list[int]] = {}
    named = [(n, m) for n, m in model.named_modules() if n]
    handles = []
    for name, module in named:

        def hook(m: nn.Module, inputs: object, output: object, name: str = name) -> None:
            shapes.setdefault(name, per_sample_shape(output))

        handles.append(module.register_forward_hook(hook))
    try:
        probe_forward(model, input_shape, batch=2)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, module in named:
        if name not in shapes:
            continue
        rows.append(
            {
                "name": name,
                "type": type(module).__name__,
                "output_shape": shapes[name],
                "params": sum(p.numel() for p in module.parameters()),
                "depth": name.count(".") + 1,
            }
        )
    return rows


def summarize_built(
    model: nn.Module, name: str, input_shape: Sequence[int], description: str = "", schema: Sequence[Any] = ()
) -> ModelSummary:
    total, trainable = count_parameters(model)
    return ModelSummary(
        name=name,
        description=description,
        params_total=total,
        params_trainable=trainable,
        size_bytes=size_bytes(model),
        macs=estimate_macs(model, input_shape),
        layers=tuple(layer_summary(model, input_shape)),
        features=feature_layers(model, input_shape),
        schema=tuple(schema),
    )


def summarize_model(spec: ModelSpec | Mapping[str, Any], input_shape: Sequence[int], num_outputs: int) -> ModelSummary:
    """The core ``ModelSummary`` for ``spec`` on data of ``input_shape`` with ``num_outputs`` outputs."""
    spec = as_spec(spec)
    info = get_model_info(spec.name)
    model = build_model(spec, input_shape, num_outputs, seed=0)
    return summarize_built(model, spec.name, input_shape, info.description, schema_to_json(info.schema))
