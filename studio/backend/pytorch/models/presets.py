"""Size presets with their parameter counts for the data at hand (REQ-M10)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from studio.backend.core.requests import ModelSpec
from studio.backend.pytorch.models.build import build_model, resolve_hparams
from studio.backend.pytorch.models.registry import get_model_info
from studio.backend.pytorch.models.stats import count_parameters, estimate_macs, size_bytes

__all__ = ["PresetInfo", "list_presets", "preset_table"]


@dataclass(frozen=True)
class PresetInfo:
    name: str
    hparams: dict[str, Any] = field(default_factory=dict)
    params: int = 0
    size_bytes: int = 0
    macs: int = 0
    default: bool = False


def list_presets(name: str, input_shape: Sequence[int], num_outputs: int) -> tuple[PresetInfo, ...]:
    """Each preset of model ``name`` (in its declared order) built for this data, with its size."""
    info = get_model_info(name)
    rows = []
    for preset in info.presets:
        spec = ModelSpec(name=name, preset=preset)
        model = build_model(spec, input_shape, num_outputs, seed=0)
        rows.append(
            PresetInfo(
                name=preset,
                hparams=resolve_hparams(spec),
                params=count_parameters(model)[0],
                size_bytes=size_bytes(model),
                macs=estimate_macs(model, input_shape),
                default=preset == info.default_preset,
            )
        )
    return tuple(rows)


def preset_table(name: str, input_shape: Sequence[int], num_outputs: int) -> list[dict[str, Any]]:
    """:func:`list_presets` as JSON-ready rows ``{name, hparams, params, size_bytes, macs, default}``."""
    return [asdict(p) for p in list_presets(name, input_shape, num_outputs)]
