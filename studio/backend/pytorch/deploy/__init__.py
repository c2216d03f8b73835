"""Exports a trained model so that it is usable without Studio (issue 22, REQ-T23's checked export).

By default the exported graph takes the values as they are in the user's files (the training
preprocessing is inside it, see :mod:`.graph`) and the file describes itself (class names,
preprocessing, input layout, Studio's version; see :mod:`.describe`). ``include_preprocessing=False``
exports the bare network, which expects normalised inputs, as before. Either way the written file is
run next to the live (wrapped) model before it is reported.
"""

from __future__ import annotations

import json

import torch

from studio.backend.core.requests import ExportRequest
from studio.backend.core.results import ExportResult
from studio.backend.pytorch.data.preprocessing import Preprocessing
from studio.backend.pytorch.deploy.describe import EXTRA_FILE, export_metadata, loader_snippet, onnx_metadata_props
from studio.backend.pytorch.deploy.graph import PIXEL_RANGES, RawInputModel
from studio.backend.pytorch.model_store import TrainedModel
from studio.backend.pytorch.serialization import export_model

__all__ = ["export_trained", "PIXEL_RANGES", "RawInputModel"]


def _example(prep: Preprocessing, shape: tuple[int, ...], in_graph: bool, pixel_range: str) -> torch.Tensor:
    """Check inputs in the range the exported graph will see: raw pixels, or raw values near the training data."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((4, *shape), generator=gen)
    if not in_graph:
        return noise
    if prep.input_kind == "image":
        pixels = torch.rand((4, *shape), generator=gen)
        return pixels / PIXEL_RANGES[pixel_range]
    if not prep.x_mean:
        return noise
    return torch.tensor(prep.x_mean) + torch.tensor(prep.x_std) * noise


def export_trained(tm: TrainedModel, request: ExportRequest) -> ExportResult:
    """Write ``tm`` as ``request.format`` to ``request.path``, checked against the live model."""
    prep = Preprocessing.from_dict(tm.preprocessing)
    in_graph = bool(request.include_preprocessing)
    device = next(tm.module.parameters()).device
    model = RawInputModel(tm.module, prep, tm.task, pixel_range=request.pixel_range,
                          probabilities=request.softmax).to(device) if in_graph else tm.module
    meta = export_metadata(prep, tm.task, tuple(tm.class_names), in_graph=in_graph,
                           probabilities=bool(request.softmax), pixel_range=request.pixel_range)
    props = onnx_metadata_props(meta) if request.format == "onnx" else {EXTRA_FILE: json.dumps(meta)}
    example = _example(prep, tuple(tm.input_shape), in_graph, request.pixel_range).to(device)
    result = export_model(model, example, request.path, request.format, request.tolerance,  # type: ignore[arg-type]
                          metadata=props, snippet=lambda path: loader_snippet(request.format, path, meta))
    return ExportResult(path=result.path, format=result.format, size_bytes=result.size_bytes,
                        max_abs_diff=result.max_abs_diff, loader_snippet=result.loader_snippet, metadata=meta)
