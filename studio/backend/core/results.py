"""Typed results of every operation (REQ-H01, REQ-H10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.backend.core.contract import Contract

__all__ = [
    "Catalogue",
    "DataSummary",
    "ModelSummary",
    "TrainResult",
    "EvaluateResult",
    "PredictResult",
    "DistillResult",
    "FileResult",
    "LoadResult",
    "ExportResult",
    "ReleaseResult",
]


@dataclass(frozen=True)
class DataSummary(Contract):
    name: str
    task: str  # classification, regression, binary, multilabel
    input_kind: str  # vector, image, sequence
    input_shape: tuple[int, ...]
    num_samples: int
    num_outputs: int
    class_names: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()
    split_sizes: dict[str, int] = field(default_factory=dict)
    feature_names: tuple[str, ...] = ()
    description: str = ""
    preview: dict[str, Any] = field(default_factory=dict)
    image_size_note: str = ""  # an image folder: the size its images are resized to, and why


@dataclass(frozen=True)
class ModelSummary(Contract):
    name: str
    description: str
    params_total: int
    params_trainable: int
    size_bytes: int
    macs: int
    layers: tuple[dict[str, Any], ...] = ()
    features: dict[str, tuple[int, ...]] = field(default_factory=dict)
    schema: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TrainResult(Contract):
    status: str  # finished, cancelled
    model: str  # handle for evaluate/predict/save/export
    epochs_run: int
    steps: int
    final_metrics: dict[str, float]
    best_metrics: dict[str, float]
    best_epoch: int
    history: tuple[dict[str, float], ...] = ()
    duration_s: float = 0.0


@dataclass(frozen=True)
class EvaluateResult(Contract):
    split: str
    num_samples: int
    metrics: dict[str, float]
    per_class: tuple[dict[str, Any], ...] = ()
    confusion: tuple[tuple[int, ...], ...] = ()
    class_names: tuple[str, ...] = ()
    # per sample of the split, for drilling into the confusion matrix (classification and binary):
    # its index in the dataset, true and predicted class index, and the predicted class's probability
    sample_indices: tuple[int, ...] = ()
    targets: tuple[int, ...] = ()
    predicted: tuple[int, ...] = ()
    confidence: tuple[float, ...] = ()


@dataclass(frozen=True)
class PredictResult(Contract):
    """Predictions in input order; ``names`` says which input each row is: an image's path relative to
    the folder given, ``line N`` of a CSV file, or ``row i``; ``class_names`` names the probabilities."""

    task: str
    indices: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    probabilities: tuple[tuple[float, ...], ...] = ()
    top_k: tuple[tuple[tuple[str, float], ...], ...] = ()
    values: tuple[tuple[float, ...], ...] = ()
    names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()  # the column of each probability


@dataclass(frozen=True)
class DistillResult(Contract):
    """``train`` is the distilled student's run (as ``train`` returns it); ``comparison`` one row per
    role (teacher, student, baseline) on the validation split; ``baseline`` the student-alone run
    when asked (its ``model`` handle too)."""

    train: TrainResult
    teacher_metrics: dict[str, float]
    comparison: tuple[dict[str, Any], ...] = ()
    gap_closed: float | None = None
    baseline: TrainResult | None = None


@dataclass(frozen=True)
class FileResult(Contract):
    path: str
    size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadResult(Contract):
    model: str
    path: str
    size_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportResult(Contract):
    path: str
    format: str
    size_bytes: int
    max_abs_diff: float
    loader_snippet: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # what the file says about itself (class names, ...)


@dataclass(frozen=True)
class Catalogue(Contract):
    """What a backend offers. ``datasets``: name, description, task, input_kind; ``models``: the
    registry's JSON description (schema, presets, tasks, input kinds); ``devices``: id, name, memory."""

    datasets: tuple[dict[str, Any], ...] = ()
    models: tuple[dict[str, Any], ...] = ()
    devices: tuple[dict[str, Any], ...] = ()
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseResult(Contract):
    released: tuple[str, ...] = ()  # handles that were held and are now gone
    unknown: tuple[str, ...] = ()  # handles that were not held (released before, or never made)

