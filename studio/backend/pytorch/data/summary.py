"""The dataset summary for the data panel (REQ-D08), as the core :class:`DataSummary` contract."""

from __future__ import annotations

from typing import Any

import torch

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


def preview(data: DataBundle, rows: int = 10, images: int = 8) -> dict[str, Any]:
    """First rows (tables, sequences) or a few images (nested lists of floats 0..1) with their labels."""
    if data.input_kind == "image":
        count = min(images, data.num_samples)
        if data.in_memory:
            pixels = data.x[:count]  # type: ignore[union-attr]
        else:
            from studio.backend.pytorch.data.images import read_image

            pixels = torch.stack([torch.from_numpy(read_image(data.paths[i], data.size, data.channels,  # type: ignore[union-attr]
                                                              data.max_pixels)) for i in range(count)])
        return {"kind": "images", "images": _rounded(pixels.tolist()),
                "labels": [_label_text(data, data.y[i]) for i in range(count)]}
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


def summarize(data: DataBundle, splits: Splits | None = None, preview_rows: int = 10) -> DataSummary:
    return DataSummary(
        name=data.name, task=data.task, input_kind=data.input_kind, input_shape=tuple(int(s) for s in data.input_shape),
        num_samples=data.num_samples, num_outputs=int(data.num_outputs), class_names=tuple(data.class_names),
        class_counts=class_counts(data.y, data.task, int(data.num_outputs)),
        split_sizes=splits.sizes() if splits is not None else {}, feature_names=tuple(data.feature_names),
        description=data.description, preview=preview(data, rows=preview_rows),
    )
