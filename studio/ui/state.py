"""The one application state every area reads and writes (napari's model side, in small).

Areas never talk to each other: the Data area sets :attr:`AppState.data`, the Model area
:attr:`AppState.model`, and so on; each setter announces a change only when the value really
changed. The Train and Distill areas build their requests from here, and a project file is a
snapshot of it. Nothing here touches the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    ModelSpec,
    RuntimeConfig,
    TrainConfig,
    TrainRequest,
)
from studio.backend.core.results import Catalogue, DataSummary

__all__ = ["AppState", "TrainedModelRef", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = TrainConfig(epochs=20, batch_size=64, lr=1e-3)


@dataclass(frozen=True)
class TrainedModelRef:
    """A model the backend holds (from a run or a loaded checkpoint), as the other areas need it."""

    handle: str
    label: str
    source: str = "train"  # train, distill, load
    data: DataSpec | None = None
    model: ModelSpec | None = None
    task: str = ""
    class_names: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class AppState(QObject):
    data_changed = Signal(object)  # DataSpec
    model_changed = Signal(object)  # ModelSpec
    config_changed = Signal(object)  # TrainConfig
    runtime_changed = Signal(object)  # RuntimeConfig
    distill_changed = Signal(object)  # DistillConfig
    teacher_changed = Signal(str)
    catalogue_changed = Signal(object)  # Catalogue
    data_summary_changed = Signal(object)  # DataSummary | None
    trained_model_changed = Signal(object)  # TrainedModelRef | None
    running_changed = Signal(bool, str)  # running, operation ("train", "distill")
    error_raised = Signal(dict)  # StudioError.to_dict(); the window shows it
    message = Signal(str)  # a short note for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.data = DataSpec(source="builtin", name="digits")
        self.model = ModelSpec(name="mlp")
        self.config = DEFAULT_CONFIG
        self.runtime = RuntimeConfig()
        self.distill = DistillConfig()
        self.teacher = ""
        self.catalogue: Catalogue | None = None
        self.data_summary: DataSummary | None = None
        self.trained_model: TrainedModelRef | None = None
        self.running = ""  # the operation in progress, "" when idle
        self.project_path = ""

    # -- setters: each announces a real change once ------------------------------------------
    def set_data(self, spec: DataSpec) -> None:
        if spec != self.data:
            self.data = spec
            self.data_changed.emit(spec)

    def set_model(self, spec: ModelSpec) -> None:
        if spec != self.model:
            self.model = spec
            self.model_changed.emit(spec)

    def set_config(self, config: TrainConfig) -> None:
        if config != self.config:
            self.config = config
            self.config_changed.emit(config)

    def update_config(self, **changes: Any) -> None:
        self.set_config(replace(self.config, **changes))

    def set_runtime(self, runtime: RuntimeConfig) -> None:
        if runtime != self.runtime:
            self.runtime = runtime
            self.runtime_changed.emit(runtime)

    def set_distill(self, config: DistillConfig) -> None:
        if config != self.distill:
            self.distill = config
            self.distill_changed.emit(config)

    def set_teacher(self, path: str) -> None:
        if path != self.teacher:
            self.teacher = path
            self.teacher_changed.emit(path)

    def set_catalogue(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.catalogue_changed.emit(catalogue)

    def set_data_summary(self, summary: DataSummary | None) -> None:
        self.data_summary = summary
        self.data_summary_changed.emit(summary)

    def set_trained_model(self, ref: TrainedModelRef | None) -> None:
        self.trained_model = ref
        self.trained_model_changed.emit(ref)

    def set_running(self, operation: str) -> None:
        if operation != self.running:
            self.running = operation
            self.running_changed.emit(bool(operation), operation)

    def report_error(self, error: dict) -> None:
        self.error_raised.emit(error)

    # -- requests ---------------------------------------------------------------------------
    def train_request(self, **changes: Any) -> TrainRequest:
        request = TrainRequest(data=self.data, model=self.model, config=self.config, runtime=self.runtime)
        return replace(request, **changes) if changes else request

    def distill_request(self) -> DistillRequest:
        return DistillRequest(teacher=self.teacher, student=self.model, data=self.data, config=self.config,
                              distill=self.distill, runtime=self.runtime)

    # -- catalogue helpers --------------------------------------------------------------------
    def model_info(self, name: str) -> dict[str, Any] | None:
        if self.catalogue is None:
            return None
        return next((m for m in self.catalogue.models if m.get("name") == name), None)

    def dataset_info(self, name: str) -> dict[str, Any] | None:
        if self.catalogue is None:
            return None
        return next((d for d in self.catalogue.datasets if d.get("name") == name), None)

    def choices(self, name: str, fallback: tuple[str, ...] = ()) -> tuple[str, ...]:
        if self.catalogue is None:
            return fallback
        return tuple(self.catalogue.choices.get(name, fallback))

    # -- snapshots (settings, project files) --------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole set-up as JSON-ready data (the last configuration kept in the settings)."""
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "config": self.config.to_dict(),
                "runtime": self.runtime.to_dict(), "distill": self.distill.to_dict(), "teacher": self.teacher}

    def restore(self, snap: dict[str, Any]) -> None:
        """Apply :meth:`snapshot` output; a part that no longer parses keeps its current value."""
        parts = (("data", DataSpec, self.set_data), ("model", ModelSpec, self.set_model),
                 ("config", TrainConfig, self.set_config), ("runtime", RuntimeConfig, self.set_runtime),
                 ("distill", DistillConfig, self.set_distill))
        for key, kind, setter in parts:
            if isinstance(snap.get(key), dict):
                try:
                    setter(kind.from_dict(snap[key]))
                except Exception:  # noqa: BLE001 - an old or hand-edited value is simply not restored
                    continue
        if isinstance(snap.get("teacher"), str):
            self.set_teacher(snap["teacher"])
