"""The Export area (REQ-U08): save and load checkpoints, export TorchScript and ONNX.

Input: ``AppState.trained_model``. Every operation goes through a file dialog and runs in the
shared worker (``save``, ``load``, ``export``); the window then shows the written path, the size,
for exports the measured largest difference from the live model, and a loader snippet to copy.
Loading a checkpoint makes it the current model, with its metadata shown.
"""

from __future__ import annotations

import json
import os
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.formatting import format_bytes
from studio.backend.core.requests import DataSpec, ExportRequest, LoadRequest, ModelSpec, SaveRequest
from studio.backend.core.results import ExportResult, FileResult, LoadResult
from studio.ui import dialogs
from studio.ui.state import AppState, TrainedModelRef
from studio.ui.tasks import TaskRunner

__all__ = ["ExportArea", "checkpoint_snippet"]

FORMATS = {"onnx": ("ONNX", "ONNX models (*.onnx)", ".onnx"),
           "torchscript": ("TorchScript", "TorchScript files (*.pt)", ".pt")}


def checkpoint_snippet(path: str) -> str:
    return ("from studio.backend.core.registry import default_registry\n"
            "from studio.backend.core.requests import LoadRequest, PredictRequest\n\n"
            "backend = default_registry()\n"
            f"model = backend.call(\"pytorch\", \"load\", LoadRequest(path={path!r})).model\n"
            "print(backend.call(\"pytorch\", \"predict\", PredictRequest(model=model, inputs=[...])).labels)\n")


class ExportArea(QWidget):
    def __init__(self, state: AppState, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks = state, tasks
        self.last: FileResult | LoadResult | ExportResult | None = None
        self._build()
        state.trained_model_changed.connect(self._on_model)
        state.running_changed.connect(self._on_running)
        self._on_model(state.trained_model)

    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setStyleSheet("font-size: 13pt; font-weight: 600;")

        save_box = QGroupBox("Checkpoints (.safetensors)")
        self.save_button = QPushButton("Save checkpoint…")
        self.save_button.setToolTip("Write the current model to a file you can load again later (Ctrl+Shift+S).")
        self.save_button.clicked.connect(self.save_checkpoint)
        self.training_state = QCheckBox("Include the training state")
        self.training_state.setToolTip("Also keep the optimiser and schedule, so training can continue "
                                       "exactly where it stopped. The file gets bigger.")
        self.load_button = QPushButton("Load checkpoint…")
        self.load_button.setToolTip("Open a saved model to evaluate, predict with or export it.")
        self.load_button.clicked.connect(self.load_checkpoint)
        s = QVBoxLayout(save_box)
        s.addWidget(self.save_button)
        s.addWidget(self.training_state)
        s.addSpacing(8)
        s.addWidget(self.load_button)

        export_box = QGroupBox("Export for other programs")
        self.onnx_button = QPushButton("Export ONNX…")
        self.onnx_button.setToolTip("ONNX runs in many languages and runtimes, e.g. onnxruntime (Ctrl+E).")
        self.onnx_button.clicked.connect(lambda: self.export("onnx"))
        self.torchscript_button = QPushButton("Export TorchScript…")
        self.torchscript_button.setToolTip("TorchScript runs in PyTorch and C++ without Studio's code.")
        self.torchscript_button.clicked.connect(lambda: self.export("torchscript"))
        self.raw_inputs = QCheckBox("Takes raw values (preprocessing inside)")
        self.raw_inputs.setChecked(True)
        self.raw_inputs.setToolTip("The exported file takes the values as they are in your files (pixels 0..1, CSV "
                                   "numbers): the training normalisation is inside it. Unticked: the bare network, "
                                   "which needs (x - mean) / std first; mean and std are written in the file.")
        self.softmax = QCheckBox("Ends in probabilities (softmax)")
        self.softmax.setToolTip("The exported file outputs probabilities instead of logits.")
        self.pixel_range = QComboBox()
        self.pixel_range.addItem("Pixels 0..1 (as Studio reads images)", "0..1")
        self.pixel_range.addItem("Pixels 0..255 (as most image libraries give them)", "0..255")
        self.pixel_range.setToolTip("The pixel values an image model's export takes.")
        self.raw_inputs.toggled.connect(self._on_raw_inputs)
        e = QVBoxLayout(export_box)
        e.addWidget(self.onnx_button)
        e.addWidget(self.torchscript_button)
        e.addWidget(self.raw_inputs)
        e.addWidget(self.softmax)
        e.addWidget(self.pixel_range)
        note = QLabel("Each export is run next to the live model on test inputs before it is reported.")
        note.setWordWrap(True)
        e.addWidget(note)

        result_box = QGroupBox("Last file")
        self.path_label = QLabel("—")
        self.path_label.setWordWrap(True)
        self.size_label = QLabel("—")
        self.diff_label = QLabel("—")
        self.diff_label.setToolTip("The exported model is run on test inputs next to the live model; this is the "
                                   "largest difference between their outputs.")
        self.details = QLabel()
        self.details.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Path", self.path_label)
        form.addRow("Size", self.size_label)
        form.addRow("Check", self.diff_label)
        form.addRow("Details", self.details)
        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        self.snippet.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.snippet.setToolTip("Python code that loads the written file.")
        self.snippet.setMinimumHeight(120)
        self.snippet.setMaximumHeight(220)
        self.copy_button = QPushButton("Copy code")
        self.copy_button.setToolTip("Copy the loader code to the clipboard.")
        self.copy_button.clicked.connect(self.copy_snippet)
        r = QVBoxLayout(result_box)
        r.addLayout(form)
        r.addWidget(QLabel("Load it with:"))
        r.addWidget(self.snippet)
        r.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignLeft)
        r.addStretch(1)

        self.busy_label = QLabel()
        self.busy_label.setWordWrap(True)
        actions = QWidget()
        actions.setMaximumWidth(380)
        a = QVBoxLayout(actions)
        a.setContentsMargins(0, 0, 0, 0)
        a.addWidget(save_box)
        a.addWidget(export_box)
        a.addWidget(self.busy_label)
        a.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(actions)
        row.addWidget(result_box, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_label)
        layout.addLayout(row, 1)

    # -- state --------------------------------------------------------------------------------
    @Slot(object)
    def _on_model(self, ref: TrainedModelRef | None) -> None:
        has = ref is not None
        for w in (self.save_button, self.training_state, self.onnx_button, self.torchscript_button, self.raw_inputs,
                  self.softmax):
            w.setEnabled(has and not self.state.running)
        images = self._takes_images(ref)
        self.pixel_range.setVisible(images)
        self.pixel_range.setEnabled(images and self.raw_inputs.isChecked() and not self.state.running)
        self.training_state.setEnabled(has and ref.source != "load" if ref is not None else False)
        self.model_label.setText(f"Model: {ref.label}" if ref is not None
                                 else "No model yet: train one, or load a checkpoint.")

    def _takes_images(self, ref: TrainedModelRef | None) -> bool:
        if ref is None:
            return False
        kind = (ref.metadata.get("preprocessing") or {}).get("input_kind")
        if kind is None and ref.data is not None:
            info = self.state.dataset_info(ref.data.name) if ref.data.source == "builtin" else None
            kind = "image" if ref.data.source == "images" else (info or {}).get("input_kind")
        return kind == "image"

    @Slot(bool)
    def _on_raw_inputs(self, _checked: bool) -> None:
        self._on_model(self.state.trained_model)  # the pixel range applies to raw inputs only

    @Slot(bool, str)
    def _on_running(self, running: bool, _operation: str) -> None:
        self._on_model(self.state.trained_model)

    def _suggested(self, suffix: str) -> str:
        ref = self.state.trained_model
        data = ref.data.name if ref is not None and ref.data is not None else "model"
        model = ref.model.name if ref is not None and ref.model is not None else "model"
        return f"{data}-{model}{suffix}"

    def _busy(self, text: str) -> None:
        self.busy_label.setText(text)

    # -- actions ------------------------------------------------------------------------------
    @Slot()
    def save_checkpoint(self) -> None:
        ref = self.state.trained_model
        if ref is None:
            return
        path = dialogs.save_file(self, "checkpoints", "Save the model", "Checkpoints (*.safetensors)",
                                 self._suggested(".safetensors"))
        if not path:
            return
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        self._busy("Saving…")
        request = SaveRequest(model=ref.handle, path=path, training_state=self.training_state.isChecked())
        self.tasks.submit("save", request, self._on_saved, self._on_error, key="export")

    @Slot()
    def load_checkpoint(self) -> None:
        path = dialogs.open_file(self, "checkpoints", "Load a checkpoint",
                                 "Checkpoints (*.safetensors);;All files (*)")
        if not path:
            return
        self._busy("Loading…")
        self.tasks.submit("load", LoadRequest(path=path), self._on_loaded, self._on_error, key="export")

    def export(self, fmt: str) -> None:
        ref = self.state.trained_model
        if ref is None:
            return
        name, filters, suffix = FORMATS[fmt]
        path = dialogs.save_file(self, "exports", f"Export as {name}", filters, self._suggested(suffix))
        if not path:
            return
        if not path.endswith(suffix):
            path += suffix
        self._busy(f"Exporting and checking the {name} file…")
        pixels = self.pixel_range.currentData() if self._takes_images(ref) else "0..1"
        request = ExportRequest(model=ref.handle, path=path, format=fmt, softmax=self.softmax.isChecked(),
                                include_preprocessing=self.raw_inputs.isChecked(), pixel_range=pixels)
        self.tasks.submit("export", request, self._on_exported, self._on_error, key="export")

    @Slot()
    def export_onnx(self) -> None:
        self.export("onnx")

    @Slot()
    def copy_snippet(self) -> None:
        QGuiApplication.clipboard().setText(self.snippet.toPlainText())
        self.state.message.emit("Copied the loader code.")

    # -- results ------------------------------------------------------------------------------
    def _show_file(self, path: str, size: int, check: str, details: str, snippet: str) -> None:
        self._busy("")
        self.path_label.setText(path)
        self.size_label.setText(f"{format_bytes(size)} ({size:,} bytes)")
        self.diff_label.setText(check)
        self.details.setText(details)
        self.snippet.setPlainText(snippet)

    def _on_saved(self, result: FileResult) -> None:
        self.last = result
        state = "with training state" if result.extra.get("training_state") else "weights and metadata"
        self._show_file(result.path, result.size_bytes, "Written atomically", f"Checkpoint, {state}.",
                        checkpoint_snippet(result.path))
        self.state.message.emit(f"Saved {os.path.basename(result.path)}")

    def _on_loaded(self, result: LoadResult) -> None:
        self.last = result
        meta = result.metadata
        self._show_file(result.path, result.size_bytes, "Loaded", describe_metadata(meta),
                        checkpoint_snippet(result.path))
        model_entry = meta.get("model") or {}
        spec = model_entry.get("spec")
        data = meta.get("data")
        self.state.set_trained_model(TrainedModelRef(
            handle=result.model, label=f"{os.path.basename(result.path)} (loaded)", source="load",
            data=_parse(DataSpec, data), model=_parse(ModelSpec, spec), task=str(meta.get("task", "")),
            class_names=tuple(meta.get("class_names") or ()),
            metrics={k: float(v) for k, v in (meta.get("metrics") or {}).items() if isinstance(v, (int, float))},
            metadata=meta))
        self.state.message.emit(f"Loaded {os.path.basename(result.path)}")

    def _on_exported(self, result: ExportResult) -> None:
        self.last = result
        name = FORMATS.get(result.format, (result.format,))[0]
        takes = (result.metadata.get("input") or {}).get("values", "")
        self._show_file(result.path, result.size_bytes,
                        f"Largest difference from the live model: {result.max_abs_diff:.2g} (allowed 1e-4)",
                        f"{name} export, checked against the live model." + (f" It takes {takes}." if takes else ""),
                        result.loader_snippet)
        self.state.message.emit(f"Exported {os.path.basename(result.path)}")

    def _on_error(self, error: dict) -> None:
        self._busy("")
        self.state.report_error(error)


def describe_metadata(meta: dict[str, Any]) -> str:
    """A checkpoint's metadata in a few plain lines: model, task, classes, metrics."""
    lines = []
    spec = (meta.get("model") or {}).get("spec") or {}
    if spec:
        extra = f", preset {spec['preset']}" if spec.get("preset") else ""
        hp = f", {json.dumps(spec['hparams'])}" if spec.get("hparams") else ""
        lines.append(f"Model: {spec.get('name', '?')}{extra}{hp}")
    if meta.get("task"):
        classes = meta.get("class_names") or []
        shown = ", ".join(map(str, classes[:12])) + (" …" if len(classes) > 12 else "")
        lines.append(f"Task: {meta['task']}" + (f" — {len(classes)} classes: {shown}" if classes else ""))
    data = meta.get("data") or {}
    if data:
        lines.append(f"Trained on: {data.get('name') if data.get('source') == 'builtin' else data.get('path')}")
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if k.startswith("val_")}
    if metrics:
        lines.append("Metrics: " + ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in metrics.items()))
    return "\n".join(lines)


def _parse(kind: type, value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    try:
        return kind.from_dict(value)
    except Exception:  # noqa: BLE001 - metadata from an older file is shown but not reused
        return None
