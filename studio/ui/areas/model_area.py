"""The Model area (REQ-U06): registry-driven list, schema-generated form, live size and layers.

Input: the catalogue's models (schema, presets, description) and the current data, whose shape
decides the parameter count. Output: ``AppState.model`` (a ``ModelSpec``). Every change asks
``inspect_model`` in the shared worker, debounced by 200 ms and latest-only, so typing stays fluid.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.formatting import format_bytes, format_count
from studio.backend.core.requests import InspectModelRequest, ModelSpec
from studio.backend.core.results import Catalogue, DataSummary, ModelSummary
from studio.ui.errors import error_text
from studio.ui.state import AppState
from studio.ui.tasks import TaskRunner
from studio.ui.widgets.hparam_form import HParamForm

__all__ = ["ModelArea", "compatible"]

CUSTOM = "custom"


def compatible(info: dict[str, Any], summary: DataSummary | None) -> str:
    """Why a model does not fit the data, or ``""`` when it does (or the data is not known yet)."""
    if summary is None:
        return ""
    if summary.input_kind not in info.get("input_kinds", [summary.input_kind]):
        kinds = " or ".join(info.get("input_kinds", []))
        return f"Needs {kinds} inputs; this data has {summary.input_kind} inputs."
    if summary.task not in info.get("tasks", [summary.task]):
        return f"Cannot do {summary.task} tasks."
    return ""


class ModelArea(QWidget):
    def __init__(self, state: AppState, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks = state, tasks
        self._syncing = False
        self.form: HParamForm | None = None
        self.summary: ModelSummary | None = None
        self.inspections = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.inspect_now)
        self._build()
        state.catalogue_changed.connect(self._on_catalogue)
        state.model_changed.connect(self._on_model_changed)
        state.data_changed.connect(self._schedule)
        state.data_summary_changed.connect(self._on_data_summary)
        state.running_changed.connect(self._on_running)

    def _build(self) -> None:
        list_box = QGroupBox("Architectures")
        self.model_list = QListWidget()
        self.model_list.setToolTip("Every model the backend offers. Greyed ones do not fit the chosen data.")
        self.model_list.currentItemChanged.connect(self._on_model_picked)
        QVBoxLayout(list_box).addWidget(self.model_list)

        self.name_label = QLabel()
        self.name_label.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.recommended = QLabel()
        self.recommended.setWordWrap(True)
        self.fit_note = QLabel()
        self.fit_note.setWordWrap(True)
        self.fit_note.setStyleSheet("color: #c0392b;")
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Ready-made sizes: tiny trains fastest, base is the largest. "
                                     "Changing a value below makes it custom.")
        self.preset_combo.currentIndexChanged.connect(self._on_preset)
        preset_row = QFormLayout()
        preset_row.addRow("Size preset", self.preset_combo)
        self.form_box = QGroupBox("Hyperparameters")
        self.form_layout = QVBoxLayout(self.form_box)
        self.form_problem = QLabel()
        self.form_problem.setWordWrap(True)
        self.form_problem.setStyleSheet("color: #c0392b;")
        self.form_problem.hide()

        middle = QWidget()
        mid = QVBoxLayout(middle)
        mid.addWidget(self.name_label)
        mid.addWidget(self.description)
        mid.addWidget(self.recommended)
        mid.addWidget(self.fit_note)
        mid.addLayout(preset_row)
        mid.addWidget(self.form_box)
        mid.addWidget(self.form_problem)
        mid.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(middle)

        self.params_label = QLabel("…")
        self.params_label.setStyleSheet("font-size: 13pt; font-weight: 600;")
        self.params_label.setToolTip("Parameters are the numbers the model learns; size is their memory in 32-bit "
                                     "floats; multiply-adds measure the work for one example.")
        self.inspect_problem = QLabel()
        self.inspect_problem.setWordWrap(True)
        self.inspect_problem.setStyleSheet("color: #c0392b;")
        self.inspect_problem.hide()
        self.layers = QTableWidget(0, 4)
        self.layers.setHorizontalHeaderLabels(["Layer", "Type", "Output shape", "Parameters"])
        self.layers.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.layers.verticalHeader().hide()
        self.layers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.layers.horizontalHeader().setStretchLastSection(True)
        right = QWidget()
        r = QVBoxLayout(right)
        r.addWidget(self.params_label)
        r.addWidget(self.inspect_problem)
        r.addWidget(QLabel("Layers (for the chosen data)"))
        r.addWidget(self.layers, 1)

        self.splitter = QSplitter()
        self.splitter.addWidget(list_box)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(right)
        self.splitter.setSizes([220, 420, 480])
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)

    # -- state -> widgets ---------------------------------------------------------------------
    @Slot(object)
    def _on_catalogue(self, catalogue: Catalogue) -> None:
        self._syncing = True
        self.model_list.clear()
        for info in catalogue.models:
            item = QListWidgetItem(info["name"])
            item.setData(Qt.ItemDataRole.UserRole, info["name"])
            item.setToolTip(info.get("description", ""))
            self.model_list.addItem(item)
        self._syncing = False
        self._mark_compatibility()
        self._show_spec(self.state.model, rebuild=True)
        self._schedule()

    @Slot(object)
    def _on_data_summary(self, summary: DataSummary | None) -> None:
        self._mark_compatibility()

    def _mark_compatibility(self) -> None:
        summary = self.state.data_summary
        for i in range(self.model_list.count()):
            item = self.model_list.item(i)
            info = self.state.model_info(item.data(Qt.ItemDataRole.UserRole)) or {}
            why = compatible(info, summary)
            item.setForeground(QBrush(QColor("#9a9a9a")) if why else QBrush())
            item.setToolTip(f"{info.get('description', '')}\n{why}".strip())
        info = self.state.model_info(self.state.model.name) or {}
        why = compatible(info, summary)
        self.fit_note.setText(why)
        self.fit_note.setVisible(bool(why))

    @Slot(object)
    def _on_model_changed(self, spec: ModelSpec) -> None:
        rebuild = self.form is None or self.form.property("model") != spec.name
        self._show_spec(spec, rebuild=rebuild)
        self._schedule()

    def _show_spec(self, spec: ModelSpec, rebuild: bool) -> None:
        info = self.state.model_info(spec.name)
        if info is None:
            return
        self._syncing = True
        try:
            for i in range(self.model_list.count()):
                if self.model_list.item(i).data(Qt.ItemDataRole.UserRole) == spec.name:
                    self.model_list.setCurrentRow(i)
            self.name_label.setText(spec.name)
            self.description.setText(info.get("description", ""))
            self.recommended.setText(f"Good for: {info['recommended_use']}" if info.get("recommended_use") else "")
            if rebuild:
                self._rebuild_form(info)
            self.preset_combo.clear()
            self.preset_combo.addItem("custom (as set below)", CUSTOM)
            for name in info.get("presets", {}):
                self.preset_combo.addItem(name, name)
            preset = spec.preset or (info.get("default_preset") if not spec.hparams else None)
            index = self.preset_combo.findData(preset) if preset else 0
            self.preset_combo.setCurrentIndex(max(index, 0))
            assert self.form is not None
            values = dict(info.get("presets", {}).get(spec.preset, {})) if spec.preset else {}
            values.update(spec.hparams)
            self.form.set_values(values)
        finally:
            self._syncing = False
        self._mark_compatibility()

    def _rebuild_form(self, info: dict[str, Any]) -> None:
        if self.form is not None:
            self.form_layout.removeWidget(self.form)
            self.form.deleteLater()
        self.form = HParamForm(info.get("schema", ()))
        self.form.setProperty("model", info["name"])
        self.form.changed.connect(self._on_form_changed)
        self.form_layout.addWidget(self.form)

    # -- widgets -> state ---------------------------------------------------------------------
    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_model_picked(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._syncing or item is None:
            return
        self.state.set_model(ModelSpec(name=item.data(Qt.ItemDataRole.UserRole)))

    def select_model(self, name: str) -> None:
        self.state.set_model(ModelSpec(name=name))

    @Slot(int)
    def _on_preset(self, _index: int) -> None:
        if self._syncing:
            return
        preset = self.preset_combo.currentData()
        if preset and preset != CUSTOM:
            self.state.set_model(ModelSpec(name=self.state.model.name, preset=preset, init=self.state.model.init))

    @Slot()
    def _on_form_changed(self) -> None:
        if self._syncing or self.form is None:
            return
        problems = self.form.problems()
        self.form_problem.setText("\n".join(problems))
        self.form_problem.setVisible(bool(problems))
        if problems:
            return
        self._syncing = True
        self.preset_combo.setCurrentIndex(0)
        self._syncing = False
        self.state.set_model(ModelSpec(name=self.state.model.name, hparams=self.form.values(),
                                       init=self.state.model.init))

    @Slot(bool, str)
    def _on_running(self, running: bool, _operation: str) -> None:
        self.model_list.setEnabled(not running)
        self.preset_combo.setEnabled(not running)
        self.form_box.setEnabled(not running)

    # -- inspection ---------------------------------------------------------------------------
    @Slot()
    def _schedule(self, *_: object) -> None:
        self._timer.start()

    @Slot()
    def inspect_now(self) -> None:
        self._timer.stop()
        request = InspectModelRequest(model=self.state.model, data=self.state.data)
        self.tasks.submit("inspect_model", request, self._on_summary, self._on_error, key="inspect_model")

    def _on_summary(self, summary: ModelSummary) -> None:
        self.inspections += 1
        self.summary = summary
        self.inspect_problem.hide()
        self.params_label.setText(
            f"{format_count(summary.params_total)} parameters · {format_bytes(summary.size_bytes)} · "
            f"{format_count(summary.macs)} multiply-adds per example")
        self.params_label.setToolTip(f"{summary.params_total:,} parameters ({summary.params_trainable:,} trainable)")
        self.layers.setRowCount(len(summary.layers))
        for row, layer in enumerate(summary.layers):
            indent = "    " * max(int(layer.get("depth", 1)) - 1, 0)
            shape = "x".join(str(d) for d in layer.get("output_shape", ()))
            cells = [indent + str(layer.get("name", "")), str(layer.get("type", "")), shape,
                     f"{int(layer.get('params', 0)):,}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.layers.setItem(row, col, item)

    def _on_error(self, error: dict) -> None:
        self.summary = None
        self.params_label.setText("—")
        self.inspect_problem.setText(error_text(error))
        self.inspect_problem.show()
        self.layers.setRowCount(0)
