"""The Distill area (REQ-U07): teach a small student from a trained teacher, compare the three.

Input: the teacher checkpoint (chosen through a file dialog; ``load`` reads its metadata), the
student (``AppState.model``, as in a project file), the data and training settings of the state.
Output: a ``distill`` run through the shared :class:`RunBridge`, with a live loss chart, then
``DistillResult.comparison`` as a table and a bar chart, and the student as the current model.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.events import EpochStats, RunStarted, StepStats
from studio.backend.core.formatting import format_bytes, format_count, format_duration
from studio.backend.core.requests import DistillConfig, LoadRequest, ModelSpec
from studio.backend.core.results import Catalogue, LoadResult
from studio.ui import dialogs
from studio.ui.areas.export_area import describe_metadata
from studio.ui.charts import LiveChart
from studio.ui.run_bridge import RunBridge
from studio.ui.state import AppState, TrainedModelRef
from studio.ui.tasks import Backend, TaskRunner
from studio.ui.widgets.bar_chart import BarChart
from studio.ui.widgets.panels import side_panel

__all__ = ["DistillArea"]

METHODS = ("kd", "dkd")
METHOD_TEXT = {"kd": "kd (classic)", "dkd": "dkd (decoupled)"}
METHOD_TIPS = {"kd": "Match the teacher's softened answers over all classes.",
               "dkd": "Match the teacher separately on the true class and on the other classes."}
FEATURE_LOSSES = ("hint-mse", "hint-cosine", "attention")
FEATURE_TEXT = {"hint-mse": "Match inner features", "hint-cosine": "Match their directions",
                "attention": "Match where it looks"}
DEFAULT_TEMPERATURE = 4.0
ROLE_COLOURS = {"teacher": (148, 103, 189), "student": (31, 119, 180), "baseline": (127, 127, 127)}


class DistillArea(QWidget):
    # the student and baseline models of the distillation a newer one replaced: the window frees them
    # once no area shows them (only the latest distillation's models are kept, as its table shows)
    models_replaced = Signal(list)

    def __init__(self, state: AppState, tasks: TaskRunner, bridge: RunBridge, backend: Backend,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks, self.bridge, self.backend = state, tasks, bridge, backend
        self._syncing = False
        self.teacher_meta: dict[str, Any] | None = None
        self.last_result: Any = None
        self.last_error: dict | None = None
        self._total = 0
        self._build()
        bridge.events.connect(self._on_events)
        bridge.finished.connect(self._on_finished)
        bridge.failed.connect(self._on_failed)
        state.catalogue_changed.connect(self._on_catalogue)
        state.model_changed.connect(self._show_student)
        state.distill_changed.connect(self._show_config)
        state.teacher_changed.connect(self._show_teacher)
        state.running_changed.connect(self._on_running)
        state.config_changed.connect(self._show_training)
        self._show_config(state.distill)
        self._show_teacher(state.teacher)
        self._show_training()
        self._set_running(False)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        teacher_box = QGroupBox("1. Teacher")
        self.teacher_button = QPushButton("Choose teacher checkpoint…")
        self.teacher_button.setToolTip("A model saved from Studio (.safetensors), usually big and accurate.")
        self.teacher_button.clicked.connect(self.choose_teacher)
        self.teacher_path = QLabel("No teacher chosen yet.")
        self.teacher_path.setWordWrap(True)
        self.teacher_info = QLabel()
        self.teacher_info.setWordWrap(True)
        t = QVBoxLayout(teacher_box)
        t.addWidget(self.teacher_button)
        t.addWidget(self.teacher_path)
        t.addWidget(self.teacher_info)

        student_box = QGroupBox("2. Student")
        self.student_combo = QComboBox()
        self.student_combo.setToolTip("The small model that learns from the teacher (the Model area shows its details).")
        self.student_combo.currentIndexChanged.connect(self._on_student)
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("The student's size; tiny is smallest and fastest.")
        self.preset_combo.currentIndexChanged.connect(self._on_student)
        s = QFormLayout(student_box)
        s.addRow("Architecture", self.student_combo)
        s.addRow("Size", self.preset_combo)

        method_box = QGroupBox("3. How it learns")
        self.method = QComboBox()
        self.method.setToolTip("How the student learns from the teacher. kd is the classic, reliable choice.")
        self._fill_methods(METHODS)
        self.temperature = _double(0.1, 100.0, 4.0, 0.5, "Softens the teacher's answers so the student also learns "
                                   "which wrong classes look alike. 2 to 8 is typical.")
        self.hard_weight = _double(0.0, 100.0, 1.0, 0.1, "How much the true labels count.")
        self.soft_weight = _double(0.0, 100.0, 1.0, 0.1, "How much matching the teacher counts.")
        self.feature_weight = _double(0.0, 100.0, 0.0, 0.1, "How much matching the teacher's inner features counts "
                                      "(0 turns it off).")
        self.feature_loss = QComboBox()
        self.feature_loss.setToolTip("How inner features are compared when the feature weight is above 0.")
        for i, name in enumerate(FEATURE_LOSSES):
            self.feature_loss.addItem(FEATURE_TEXT[name], name)
            self.feature_loss.setItemData(i, name, Qt.ItemDataRole.ToolTipRole)
        self.baseline = QCheckBox("Also train the student alone")
        self.baseline.setToolTip("Trains the same student without a teacher, from the same start, so you can "
                                 "see what the teacher added. Takes twice as long.")
        m = QFormLayout(method_box)
        m.addRow("Method", self.method)
        m.addRow("Temperature", self.temperature)
        m.addRow("Label weight", self.hard_weight)
        m.addRow("Teacher weight", self.soft_weight)
        m.addRow("Feature weight", self.feature_weight)
        m.addRow("Features", self.feature_loss)
        m.addRow(self.baseline)
        for w in (self.temperature, self.hard_weight, self.soft_weight, self.feature_weight):
            w.valueChanged.connect(self._on_config)
        self.method.currentIndexChanged.connect(self._on_config)
        self.feature_loss.currentIndexChanged.connect(self._on_config)
        self.baseline.toggled.connect(self._on_config)

        self.training_label = QLabel()
        self.training_label.setWordWrap(True)
        self.distill_button = QPushButton("Distil")
        self.distill_button.setMinimumHeight(34)
        self.distill_button.setToolTip("Start teaching the student (Ctrl+D).")
        self.distill_button.clicked.connect(self.start_distillation)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and keep the student trained so far.")
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        buttons.addWidget(self.distill_button)
        buttons.addWidget(self.stop_button)
        self.progress = QProgressBar()
        self.status = QLabel("Choose a teacher to begin.")
        self.status.setWordWrap(True)

        left = QWidget()
        col = QVBoxLayout(left)
        for w in (teacher_box, student_box, method_box, self.training_label):
            col.addWidget(w)
        col.addLayout(buttons)
        col.addWidget(self.progress)
        col.addWidget(self.status)
        col.addStretch(1)
        scroll = side_panel(left, 360)

        self.loss_chart = LiveChart("Student loss", "loss")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Model", "Accuracy", "Parameters", "Size", "Time per example"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(130)
        self.compare_chart = BarChart("Teacher, student and baseline", "accuracy", value_format="{:.1%}")
        self.gap_label = QLabel()
        self.gap_label.setWordWrap(True)
        self.gap_label.setStyleSheet("font-weight: 600;")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_chart)
        results = QWidget()
        r = QVBoxLayout(results)
        r.setContentsMargins(0, 0, 0, 0)
        r.addWidget(self.gap_label)
        r.addWidget(self.table)
        r.addWidget(self.compare_chart, 1)
        right.addWidget(results)
        right.setSizes([280, 360])

        self.splitter = QSplitter()
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([380, 860])
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)
        self.inputs = [self.teacher_button, self.student_combo, self.preset_combo, self.method, self.temperature,
                       self.hard_weight, self.soft_weight, self.feature_weight, self.feature_loss, self.baseline]

    def _fill_methods(self, methods: tuple[str, ...]) -> None:
        current = self.method.currentData()
        self.method.blockSignals(True)
        self.method.clear()
        for i, name in enumerate(methods):
            self.method.addItem(METHOD_TEXT.get(name, name), name)
            self.method.setItemData(i, METHOD_TIPS.get(name, name), Qt.ItemDataRole.ToolTipRole)
        self.method.setCurrentIndex(max(self.method.findData(current or self.state.distill.method), 0))
        self.method.blockSignals(False)

    # -- state <-> widgets --------------------------------------------------------------------
    @Slot(object)
    def _on_catalogue(self, catalogue: Catalogue) -> None:
        self._syncing = True
        self.student_combo.clear()
        for info in catalogue.models:
            self.student_combo.addItem(info["name"], info["name"])
        methods = tuple(catalogue.choices.get("distill_methods", ())) or METHODS
        self._fill_methods(methods)
        self._syncing = False
        self._show_student(self.state.model)
        self._show_config(self.state.distill)

    @Slot(object)
    def _show_student(self, spec: ModelSpec) -> None:
        self._syncing = True
        try:
            self.student_combo.setCurrentIndex(max(self.student_combo.findData(spec.name), 0))
            info = self.state.model_info(spec.name) or {}
            self.preset_combo.clear()
            if spec.hparams and not spec.preset:
                self.preset_combo.addItem("custom (set in the Model area)", "")
            for name in info.get("presets", {}):
                self.preset_combo.addItem(name, name)
            chosen = spec.preset or ("" if spec.hparams else info.get("default_preset", ""))
            self.preset_combo.setCurrentIndex(max(self.preset_combo.findData(chosen), 0))
        finally:
            self._syncing = False

    @Slot()
    def _on_student(self, *_: object) -> None:
        if self._syncing:
            return
        name = self.student_combo.currentData()
        preset = self.preset_combo.currentData()
        if not name:
            return
        if name != self.state.model.name:
            info = self.state.model_info(name) or {}
            self.state.set_model(ModelSpec(name=name, preset=info.get("default_preset") or None))
        elif preset:
            self.state.set_model(ModelSpec(name=name, preset=preset, init=self.state.model.init))

    @Slot(object)
    def _show_config(self, config: DistillConfig) -> None:
        self._syncing = True
        try:
            self.method.setCurrentIndex(max(self.method.findData(config.method), 0))
            self.temperature.setValue(config.temperature if config.temperature is not None else DEFAULT_TEMPERATURE)
            self.feature_loss.setCurrentIndex(max(self.feature_loss.findData(config.feature_loss), 0))
            self.hard_weight.setValue(config.hard_weight)
            self.soft_weight.setValue(config.soft_weight)
            self.feature_weight.setValue(config.feature_weight)
            self.baseline.setChecked(config.baseline)
        finally:
            self._syncing = False

    @Slot()
    def _on_config(self, *_: object) -> None:
        if self._syncing:
            return
        self.state.set_distill(replace(self.state.distill, method=self.method.currentData() or "kd",
                                       temperature=self.temperature.value(), hard_weight=self.hard_weight.value(),
                                       soft_weight=self.soft_weight.value(),
                                       feature_weight=self.feature_weight.value(), baseline=self.baseline.isChecked(),
                                       feature_loss=self.feature_loss.currentData() or "hint-mse"))

    @Slot()
    def _show_training(self, *_: object) -> None:
        c = self.state.config
        self.training_label.setText(f"Training settings come from the Train area: {c.epochs} epochs, batch {c.batch_size}, "
                                    f"{c.optimizer} at learning rate {c.lr:g}.")

    @Slot(str)
    def _show_teacher(self, path: str) -> None:
        self.teacher_path.setText(f"Teacher: {os.path.basename(path)}" if path else "No teacher chosen yet.")
        self.teacher_path.setToolTip(path)
        if path and (self.teacher_meta is None or self.teacher_meta.get("_path") != path) and os.path.isfile(path):
            self.tasks.submit("load", LoadRequest(path=path), self._on_teacher_loaded, self._on_teacher_error,
                              key="teacher")
        self._set_running(bool(self.state.running))

    # -- teacher ------------------------------------------------------------------------------
    @Slot()
    def choose_teacher(self) -> None:
        path = dialogs.open_file(self, "checkpoints", "Choose the teacher checkpoint",
                                 "Checkpoints (*.safetensors);;All files (*)")
        if path:
            self.teacher_meta = None
            self.state.set_teacher(path)

    def _on_teacher_loaded(self, result: LoadResult) -> None:
        meta = dict(result.metadata)
        meta["_path"] = self.state.teacher
        self.teacher_meta = meta
        spec = (meta.get("model") or {}).get("spec") or {}
        self.teacher_info.setText(f"{describe_metadata(meta)}\nFile size: {format_bytes(result.size_bytes)}")
        self.status.setText(f"Teacher ready ({spec.get('name', 'model')}). Press Distil to teach the student.")

    def _on_teacher_error(self, error: dict) -> None:
        self.teacher_meta = None
        self.teacher_info.setText("")
        self.state.report_error(error)

    # -- run ----------------------------------------------------------------------------------
    @Slot()
    def start_distillation(self) -> None:
        if self.bridge.running or not self.state.teacher:
            return
        self.loss_chart.clear_series()
        # the curves and legend are made now: made with the first points, they took the trainer's GUI time
        for name, dashed in (("train", False), ("val", True)):
            self.loss_chart.series(name, dashed=dashed)
        self.loss_chart.set_legend([("training", self.loss_chart.series_pen("train")),
                                    ("validation", self.loss_chart.series_pen("val"))])
        self.last_error = None
        self.progress.setValue(0)
        self.status.setText("Starting: measuring the teacher first…")
        self.bridge.owner = self
        request = self.state.distill_request()
        self.state.set_running("distill")  # the window's updates before the worker starts (they take the GIL)
        self._set_running(True)
        self.bridge.start(self.backend.caller("distill"), request)

    @Slot()
    def stop(self) -> None:
        if self.bridge.running and self.bridge.owner is self:
            self.status.setText("Stopping after the current step…")
            self.bridge.cancel()

    def _set_running(self, running: bool) -> None:
        busy_elsewhere = bool(self.state.running) and self.state.running != "distill"
        for w in self.inputs:
            w.setEnabled(not running and not busy_elsewhere)
        self.distill_button.setEnabled(not running and not busy_elsewhere and bool(self.state.teacher))
        self.stop_button.setEnabled(running)

    @Slot(bool, str)
    def _on_running(self, running: bool, operation: str) -> None:
        if operation != "distill":
            self._set_running(False)

    @Slot(object)
    def _on_events(self, batch: list) -> None:
        if self.bridge.owner is not self:
            return
        steps, losses = [], []
        for event in batch:
            if isinstance(event, RunStarted):
                self._total = event.total_epochs * event.steps_per_epoch
                self.loss_chart.x_plan = float(self._total)  # the view grows towards the last step
                self.status.setText(f"Teaching the student on {event.device}…")
            elif isinstance(event, StepStats):
                steps.append(event.step)
                losses.append(event.loss)
            elif isinstance(event, EpochStats) and "loss" in event.val:
                self.loss_chart.add_points("val", [event.step], [event.val["loss"]])
        if steps:
            self.loss_chart.add_points("train", steps, losses)
            if self._total:
                self.progress.setValue(min(100, int(100 * steps[-1] / self._total)))
        self.loss_chart.redraw()

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        if self.bridge.owner is not self:
            return
        replaced, self.last_result = _model_handles(self.last_result), result
        self.state.set_running("")
        self._set_running(False)
        train = getattr(result, "train", None)
        cancelled = getattr(train, "status", "") == "cancelled"
        self.progress.setValue(self.progress.value() if cancelled else 100)
        self.status.setText("Stopped; the student trained so far is kept." if cancelled else "Finished.")
        self.show_comparison(tuple(getattr(result, "comparison", ())), getattr(result, "gap_closed", None))
        if train is not None:
            self.state.set_trained_model(TrainedModelRef(
                handle=train.model, label=f"distilled {self.state.model.name}", source="distill",
                data=self.state.data, model=self.state.model, metrics=dict(train.final_metrics)))
        kept = _model_handles(result)
        replaced = [h for h in replaced if h not in kept]
        if replaced:
            self.models_replaced.emit(replaced)

    @Slot(dict)
    def _on_failed(self, error: dict) -> None:
        if self.bridge.owner is not self:
            return
        self.last_error = error
        self.state.set_running("")
        self._set_running(False)
        self.status.setText("Distillation failed; see the message at the top.")
        self.state.report_error(error)

    def show_comparison(self, rows: tuple[dict[str, Any], ...], gap_closed: float | None) -> None:
        metric = "accuracy" if any("accuracy" in r for r in rows) else "mse"
        self.table.setHorizontalHeaderLabels(["Model", "Accuracy" if metric == "accuracy" else "Error (MSE)",
                                              "Parameters", "Size", "Time per example"])
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            value = row.get(metric)
            shown = "—" if value is None else (f"{value:.1%}" if metric == "accuracy" else f"{value:.4g}")
            cells = [str(row.get("role", "")).capitalize(), shown,
                     format_count(row["params"]) if isinstance(row.get("params"), (int, float)) else "—",
                     format_bytes(row["size_bytes"]) if isinstance(row.get("size_bytes"), (int, float)) else "—",
                     format_duration(row["latency_ms"] / 1000) if isinstance(row.get("latency_ms"), (int, float))
                     else "—"]
            for c, text in enumerate(cells):
                self.table.setItem(i, c, QTableWidgetItem(text))
        valid = [r for r in rows if isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]
        self.compare_chart.value_format = "{:.1%}" if metric == "accuracy" else "{:.3g}"
        self.compare_chart.set_bars([str(r.get("role", "")).capitalize() for r in valid], [r[metric] for r in valid],
                                    [ROLE_COLOURS.get(str(r.get("role")), (100, 100, 100)) for r in valid])
        if gap_closed is not None and math.isfinite(gap_closed) and gap_closed >= 0:
            self.gap_label.setText(f"Learning from the teacher closed {gap_closed:.0%} of the gap between the "
                                   "student alone and the teacher.")
        elif gap_closed is not None and math.isfinite(gap_closed):
            self.gap_label.setText("The teacher did not help this time: the student alone did better. "
                                   "Try more epochs, a higher temperature or a larger teacher weight.")
        else:
            self.gap_label.setText("")


def _model_handles(result: Any) -> list[str]:
    """The backend handles a distillation result holds: its student's, and its baseline's if it has one."""
    runs = (getattr(result, "train", None), getattr(result, "baseline", None))
    return [run.model for run in runs if getattr(run, "model", "")]


def _double(lo: float, hi: float, value: float, step: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box
