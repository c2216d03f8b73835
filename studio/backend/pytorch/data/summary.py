"""The dataset summary for the data panel (REQ-D08), as the core :class:`DataSummary` contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from studio.backend.core.errors import ValidationError
from studio.backend.core.results import DataSummary
from studio.backend.pytorch.data.splits import Splits
from studio.backend.pytorch.data.types import DataBundle, class_counts

__all__ = ["summarize", "preview"]


def _label_text(data: DataBundle, y: torch.Tensor) -> Any:
    if data.task == "classification":
        return data.class_names[int(y)]
    if data.task == "binary" and len(data.class_names) == 2:
        return data.class_names[int(y[0] > 0.5)]
    return [round(float(v), 6) for v in y.tolist()]


def _rounded(values: Any) -> Any:
    if isinstance(values, list):
        return [_rounded(v) for v in values]
    return round(float(values), 4)


MAX_PICKED = 500


def _picked(data: DataBundle, indices: Sequence[int]) -> list[int]:
    bad = [i for i in indices if not (isinstance(i, int) and 0 <= i < data.num_samples)]
    if bad:
        raise ValidationError(f"Sample index {bad[0]!r} is outside the data (0 to {data.num_samples - 1}).",
                              field="indices", value=bad[0])
    return list(indices)[:MAX_PICKED]


def preview(data: DataBundle, rows: int = 10, images: int = 8, indices: Sequence[int] = ()) -> dict[str, Any]:
    """First rows (tables, sequences) or a few images (nested lists of floats 0..1) with their labels;
    with ``indices``, those samples (at most 500) in that order, with ``"indices"`` echoed."""
    picks = _picked(data, indices) if indices else None
    out = _preview(data, rows, images, picks)
    if picks is not None:
        out["indices"] = picks
    return out


def _preview(data: DataBundle, rows: int, images: int, picks: list[int] | None) -> dict[str, Any]:
    if data.input_kind == "image":
        chosen = picks if picks is not None else list(range(min(images, data.num_samples)))
        if data.in_memory:
            pixels = data.x[chosen] if chosen else data.x[:0]  # type: ignore[union-attr,index]
        else:
            from studio.backend.pytorch.data.images import read_image

            pixels = torch.stack([torch.from_numpy(read_image(data.paths[i], data.size, data.channels,  # type: ignore[union-attr]
                                                              data.max_pixels)) for i in chosen]) if chosen else torch.zeros(0)
        return {"kind": "images", "images": _rounded(pixels.tolist()),
                "labels": [_label_text(data, data.y[i]) for i in chosen]}
    if picks is not None:
        x = data.x[picks] if picks else data.x[:0]  # type: ignore[union-attr,index]
        labels = [_label_text(data, data.y[i]) for i in picks]
        if data.input_kind == "sequence":
            return {"kind": "series", "rows": _rounded(x[..., 0].tolist()), "targets": labels}
        names = list(data.feature_names) or [f"x{j}" for j in range(x.shape[1] if x.dim() > 1 else 0)]
        return {"kind": "table", "columns": names + ["target"],
                "rows": [_rounded(x[i].tolist()) + [labels[i]] for i in range(len(picks))]}
    count = min(rows, data.num_samples)
    if data.source == "csv" and "preview" in data.info:
        table = data.info["preview"]
        return {"kind": "table", "columns": list(table["columns"]), "rows": [list(r) for r in table["rows"][:count]]}
    x = data.x[:count]  # type: ignore[union-attr]
    if data.input_kind == "sequence":
        return {"kind": "series", "rows": _rounded(x[..., 0].tolist()),
                "targets": [_label_text(data, data.y[i]) for i in range(count)]}
    return {"kind": "table", "columns": list(data.feature_names) + ["target"],
            "rows": [_rounded(x[i].tolist()) + [_label_text(data, data.y[i])] for i in range(count)]}


def summarize(data: DataBundle, splits: Splits | None = None, preview_rows: int = 10,
              indices: Sequence[int] = ()) -> DataSummary:
    return DataSummary(
        name=data.name, task=data.task, input_kind=data.input_kind, input_shape=tuple(int(s) for s in data.input_shape),
        num_samples=data.num_samples, num_outputs=int(data.num_outputs), class_names=tuple(data.class_names),
        class_counts=class_counts(data.y, data.task, int(data.num_outputs)),
        split_sizes=splits.sizes() if splits is not None else {}, feature_names=tuple(data.feature_names),
        description=data.description, preview=preview(data, rows=preview_rows, indices=indices),
    )
