"""Typed requests of every operation (REQ-H01, REQ-H10).

Plain frozen dataclasses: what the window, the command line and a project file all fill in.
Validation of values against what a backend supports happens in the handler before any work
(REQ-H04); the shapes and names here are the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from studio.backend.core.contract import Contract

__all__ = [
    "CatalogueRequest",
    "DataSpec",
    "ModelSpec",
    "RuntimeConfig",
    "TrainConfig",
    "DistillConfig",
    "InspectDataRequest",
    "InspectModelRequest",
    "TrainRequest",
    "EvaluateRequest",
    "PredictRequest",
    "DistillRequest",
    "SaveRequest",
    "LoadRequest",
    "ExportRequest",
    "ReleaseRequest",
]


@dataclass(frozen=True)
class DataSpec(Contract):
    """Where the data comes from and how it is split.

    ``source`` is ``builtin`` (``name`` one of the built-in datasets), ``csv``, ``images`` or
    ``numpy`` (``path`` to the file or folder). ``options`` holds source-specific settings
    (for CSV: ``target``, ``missing``; for images: ``size``, ``grayscale``; ...).
    """

    source: str = "builtin"
    name: str = "digits"
    path: str | None = None
    target: str | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    seed: int = 0
    augment: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec(Contract):
    """An architecture by registry name, an optional size preset and hyperparameters."""

    name: str = "mlp"
    preset: str | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    init: str = "default"


@dataclass(frozen=True)
class RuntimeConfig(Contract):
    """Where and how reproducibly to run (REQ-H21)."""

    device: str = "auto"
    seed: int = 0
    deterministic: bool = True
    threads: int | None = None


@dataclass(frozen=True)
class TrainConfig(Contract):
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "constant"
    schedule_options: dict[str, Any] = field(default_factory=dict)
    loss: str | None = None  # None: the task's default loss
    label_smoothing: float = 0.0
    class_weights: tuple[float, ...] | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    accumulate: int = 1
    precision: str = "fp32"  # fp32, bf16, fp16
    early_stopping: dict[str, Any] | None = None  # monitor, mode, patience, min_delta, restore_best
    monitor: str = "val_loss"
    monitor_mode: str = "min"


@dataclass(frozen=True)
class DistillConfig(Contract):
    """How to distil (PT-DISTILL-001). ``method`` is the soft loss: ``kd`` or ``dkd`` for classes
    (``kd`` means ``regression`` for a regression teacher); ``temperature`` None means 4 for classes
    (a regression teacher takes none); ``feature_pairs`` are (student layer, teacher layer) matched by
    ``feature_loss`` (``hint-mse``, ``hint-cosine`` or ``attention``); ``method_options`` holds
    ``target_weight``/``nontarget_weight`` (dkd) or ``kind``/``delta`` (regression); ``schedules``
    maps ``temperature``/``*_weight`` to a schedule; ``baseline`` also trains the student alone."""

    method: str = "kd"
    temperature: float | None = None
    hard_weight: float = 1.0
    soft_weight: float = 1.0
    feature_weight: float = 0.0
    feature_pairs: tuple[tuple[str, str], ...] = ()
    schedules: dict[str, Any] = field(default_factory=dict)
    cache_teacher: bool = True
    baseline: bool = False
    teacher_weights: tuple[float, ...] = ()
    feature_loss: str = "hint-mse"
    method_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InspectDataRequest(Contract):
    data: DataSpec = field(default_factory=DataSpec)
    preview_rows: int = 10
    indices: tuple[int, ...] = ()  # preview these samples (dataset indices) instead of the first rows
    model: ModelSpec | None = None  # the model the data is for: it picks an image folder's size (default: mlp)


@dataclass(frozen=True)
class InspectModelRequest(Contract):
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)


@dataclass(frozen=True)
class TrainRequest(Contract):
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    config: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    resume_from: str | None = None  # a training checkpoint to continue exactly
    continue_from: str | None = None  # a model handle whose run to extend (config.epochs is the new total)
    checkpoint_path: str | None = None  # autosave a training checkpoint here after each epoch
    checkpoint_interval_s: float = 0.0  # ... after the first epoch and then at most this often (0: every epoch)


@dataclass(frozen=True)
class EvaluateRequest(Contract):
    model: str  # a model handle returned by train/load, or a checkpoint path
    data: DataSpec = field(default_factory=DataSpec)
    split: str = "val"
    batch_size: int = 256


@dataclass(frozen=True)
class PredictRequest(Contract):
    model: str
    inputs: Any = None  # nested lists (array rows), or a path to a CSV / image file / folder
    batch_size: int = 256
    top_k: int = 3


@dataclass(frozen=True)
class DistillRequest(Contract):
    teacher: str  # a teacher checkpoint path or model handle; further teachers in ``teachers``
    student: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    config: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    teachers: tuple[str, ...] = ()
    resume_from: str | None = None
    checkpoint_path: str | None = None  # autosave a training checkpoint here each epoch
    checkpoint_interval_s: float = 0.0  # ... after the first epoch and then at most this often (0: every epoch)


@dataclass(frozen=True)
class SaveRequest(Contract):
    model: str
    path: str
    training_state: bool = False
    model_card: bool = False


@dataclass(frozen=True)
class LoadRequest(Contract):
    path: str
    device: str = "cpu"
    import_state_dict: bool = False  # explicit .pt/.pth import with weights_only=True (REQ-S03) ...
    into: str | None = None  # ... into the architecture of this model handle


@dataclass(frozen=True)
class ExportRequest(Contract):
    """``include_preprocessing``: the graph takes the values as they are in the user's files (the training
    normalisation inside it); False exports the bare network, which takes normalised inputs. ``softmax``:
    the graph ends in probabilities. ``pixel_range``: an image graph's input, ``0..1`` (as Studio's image
    reader returns pixels) or ``0..255``."""

    model: str
    path: str
    format: str = "onnx"  # onnx or torchscript
    tolerance: float = 1e-4
    include_preprocessing: bool = True
    softmax: bool = False
    pixel_range: str = "0..1"


@dataclass(frozen=True)
class CatalogueRequest(Contract):
    """Ask a backend what it offers (datasets, models, devices, choices), for forms and menus."""

    include_devices: bool = True


@dataclass(frozen=True)
class ReleaseRequest(Contract):
    """Forget models the session holds (handles from ``train``, ``distill`` or ``load``), freeing their memory.

    Releasing is idempotent: a handle already released, or never known, is reported in the result and
    is not an error. A released handle can no longer be evaluated, saved, exported or trained further.
    """

    models: tuple[str, ...] = ()

