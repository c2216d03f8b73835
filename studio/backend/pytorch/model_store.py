"""Trained models kept in the backend process, addressed by string handles.

Results cross the handler boundary as JSON, so a trained model travels as a handle
(``"model-3"``) that ``evaluate``, ``predict``, ``save`` and ``export`` accept.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from studio.backend.core.errors import ValidationError
from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig

__all__ = ["TrainedModel", "ModelStore", "store"]


@dataclass
class TrainedModel:
    """A model with everything prediction and saving need."""

    module: nn.Module
    spec: ModelSpec
    input_shape: tuple[int, ...]
    num_outputs: int
    task: str
    class_names: tuple[str, ...] = ()
    preprocessing: dict[str, Any] = field(default_factory=dict)
    data: DataSpec | None = None
    config: TrainConfig | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    trainer: Any = None  # the Trainer that produced the model, for extending and training checkpoints
    source_path: str | None = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)  # e.g. distillation details


class ModelStore:
    def __init__(self) -> None:
        self._models: dict[str, TrainedModel] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def put(self, model: TrainedModel) -> str:
        with self._lock:
            handle = f"model-{next(self._ids)}"
            self._models[handle] = model
            return handle

    def get(self, handle: str) -> TrainedModel:
        with self._lock:
            try:
                return self._models[handle]
            except (KeyError, TypeError):
                known = ", ".join(sorted(self._models)) or "none yet"
                raise ValidationError(
                    f"There is no trained or loaded model {handle!r}; known models: {known}.",
                    code="model.unknown_handle",
                    field="model",
                    value=handle,
                    hint="Train or load a model first, or give the path of a checkpoint.",
                ) from None

    def drop(self, handle: str) -> bool:
        """Forget ``handle``; True if it was held."""
        with self._lock:
            return self._models.pop(handle, None) is not None

    def __contains__(self, handle: object) -> bool:
        return handle in self._models


store = ModelStore()
