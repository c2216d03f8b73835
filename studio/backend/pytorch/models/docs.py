"""Model descriptions as Markdown, generated from the registry, for the model panel and docs (REQ-M25)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from studio.backend.core.errors import StudioError
from studio.backend.core.requests import ModelSpec
from studio.backend.pytorch.models.build import build_model
from studio.backend.pytorch.models.registry import get_model_info, model_names
from studio.backend.pytorch.models.stats import count_parameters, size_bytes

__all__ = ["REFERENCE_SHAPES", "REFERENCE_OUTPUTS", "default_size", "describe_model", "describe_models"]

# The data a default-preset size is quoted for when no data are at hand.
REFERENCE_SHAPES: dict[str, tuple[int, ...]] = {"vector": (64,), "image": (3, 32, 32), "sequence": (32, 8)}
REFERENCE_OUTPUTS = 10


def human_count(n: float, unit: str = "") -> str:
    """``1234567`` -> ``1.23M``."""
    for suffix in ("", "k", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}" if suffix else f"{int(n)}{unit}"
        n /= 1000
    return f"{n:.3g}T{unit}"


def default_size(
    name: str, input_shape: Sequence[int] | None = None, num_outputs: int | None = None
) -> tuple[int, int, tuple[int, ...]]:
    """``(parameters, bytes, input_shape)`` of the default preset, on reference data unless a shape is given."""
    info = get_model_info(name)
    kind = info.input_kinds[0]
    if input_shape is not None:
        shape = tuple(input_shape)
    else:
        shape = info.example_shapes.get(kind) or REFERENCE_SHAPES[kind]
    model = build_model(
        ModelSpec(name=name, preset=info.default_preset), shape, num_outputs or REFERENCE_OUTPUTS, seed=0
    )
    return count_parameters(model)[0], size_bytes(model), shape


def describe_model(name: str, input_shape: Sequence[int] | None = None, num_outputs: int | None = None) -> str:
    """Markdown: description, recommended use, inputs and tasks, default-preset size, presets, hyperparameters."""
    info = get_model_info(name)
    outputs = num_outputs or REFERENCE_OUTPUTS
    try:
        params, nbytes, shape = default_size(name, input_shape, outputs)
        size = (
            f"{human_count(params)} parameters ({params:,}), {human_count(nbytes, 'B')}, "
            f"for inputs of shape {shape} and {outputs} outputs"
        )
    except StudioError as exc:
        size = f"unknown ({exc.message})"
    lines = [
        f"### {info.name}",
        "",
        info.description,
        "",
        f"- **Recommended use:** {info.recommended_use or 'general purpose.'}",
        f"- **Inputs:** {', '.join(info.input_kinds)}; **tasks:** {', '.join(info.tasks)}",
        f"- **Default preset ({info.default_preset or 'defaults'}):** {size}",
    ]
    if info.presets:
        lines.append(f"- **Presets:** {', '.join(info.presets)}")
    if info.schema:
        lines.append("- **Hyperparameters:**")
        lines += [f"  - `{p.name}` ({p.allowed()}; default {json.dumps(p.default)}): {p.help}" for p in info.schema]
    if info.source != "builtin":
        lines.append(f"- **Registered from:** `{info.source}`")
    return "\n".join(lines)


def describe_models() -> str:
    """Every registered model, sorted by name, as one Markdown document."""
    parts = [
        "## Models",
        "",
        "Sizes are for the default preset on reference data: vectors of 64 features, 3x32x32 images or "
        f"sequences of 32 steps x 8 channels, with {REFERENCE_OUTPUTS} outputs.",
    ]
    for name in model_names():
        parts += ["", describe_model(name)]
    return "\n".join(parts) + "\n"
