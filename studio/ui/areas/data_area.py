"""The Data area (REQ-U05): pick a built-in dataset or open a file, see it, choose target and splits.

Input: the catalogue (built-in datasets and their plain-language descriptions) and
``AppState.data``. Output: ``AppState.data`` (a ``DataSpec``) and ``AppState.data_summary``,
from ``inspect_data`` run in the shared worker, debounced and latest-only.
"""

from __future__ import annotations

import os
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.requests import DataSpec, InspectDataRequest
from studio.backend.core.results import Catalogue, DataSummary
from studio.ui import dialogs
from studio.ui.errors import error_text
from studio.ui.state import AppState
from studio.ui.tasks import TaskRunner
from studio.ui.widgets.bar_chart import BarChart
from studio.ui.widgets.image_grid import ImageGrid

__all__ = ["DataArea", "describe_summary"]

SOURCE_NAMES = {"csv": "CSV file", "images": "Image folder", "numpy": "NumPy file"}


def describe_summary(s: DataSummary) -> str:
    shape = "x".join(str(d) for d in s.input_shape)
    if s.task in ("classification", "binary"):
        what = f"{s.task} into {max(len(s.class_names), s.num_outputs)} classes"
    elif s.task == "multilabel":
        what = f"multi-label with {s.num_outputs} labels"
    else:
        what = f"regression of {s.num_outputs} value{'s' if s.num_outputs > 1 else ''}"
    splits = " / ".join(f"{k} {v:,}" for k, v in s.split_sizes.items())
    return f"{s.num_samples:,} samples · {what} · each input a {shape} {s.input_kind} · {splits}"


class DataArea(QWidget):
    def __init__(self, state: AppState, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks = state, tasks
        self._syncing = False
        self.summary: DataSummary | None = None
        self.inspections = 0
        self._inspect_timer = QTimer(self)
        self._inspect_timer.setSingleShot(True)
        self._inspect_timer.setInterval(150)
        self._inspect_timer.timeout.connect(self.inspect_now)
        self._build()
        state.catalogue_changed.connect(self._on_catalogue)
        state.data_changed.connect(self._on_data_changed)
        state.model_changed.connect(self._on_model_changed)
        state.running_changed.connect(self._on_running)
        self._show_spec(state.data)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        builtin_box = QGroupBox("Built-in datasets")
        self.builtin_list = QListWidget()
        self.builtin_list.setToolTip("Ready-made datasets that need no files. Click one to use it.")
        self.builtin_list.currentItemChanged.connect(self._on_builtin_picked)
        QVBoxLayout(builtin_box).addWidget(self.builtin_list)

        files_box = QGroupBox("Your own data")
        self.open_csv_button = QPushButton("Open CSV file…")
        self.open_csv_button.setToolTip("A table with one example per row; one column is what the model should predict.")
        self.open_images_button = QPushButton("Open image folder…")
        self.open_images_button.setToolTip("A folder with one sub-folder per class, each holding PNG or JPEG pictures.")
        self.open_numpy_button = QPushButton("Open NumPy file…")
        self.open_numpy_button.setToolTip("An .npz file holding arrays X (inputs) and y (targets), or X.npy beside y.npy.")
        self.open_csv_button.clicked.connect(self.open_csv)
        self.open_images_button.clicked.connect(self.open_image_folder)
        self.open_numpy_button.clicked.connect(self.open_numpy)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        files = QVBoxLayout(files_box)
        for b in (self.open_csv_button, self.open_images_button, self.open_numpy_button):
            files.addWidget(b)
        files.addWidget(self.source_label)

        settings_box = QGroupBox("Target and splits")
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("The column the model learns to predict (CSV files only).")
        self.target_combo.currentIndexChanged.connect(self._on_controls)
        self.val_fraction = _fraction(20, "Share of the examples held back to check the model while it trains.")
        self.test_fraction = _fraction(0, "Share of the examples kept aside for a final test, never used in training.")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2_147_483_647)
        self.seed.setToolTip("The same seed always gives the same split, so results can be repeated.")
        for w in (self.val_fraction, self.test_fraction):
            w.valueChanged.connect(self._on_controls)
        self.seed.valueChanged.connect(self._on_controls)
        form = QFormLayout(settings_box)
        form.addRow("Target", self.target_combo)
        form.addRow("Validation %", self.val_fraction)
        form.addRow("Test %", self.test_fraction)
        form.addRow("Split seed", self.seed)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(builtin_box, 1)
        left_layout.addWidget(files_box)
        left_layout.addWidget(settings_box)

        self.title = QLabel()
        self.title.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.facts = QLabel("Loading…")
        self.facts.setWordWrap(True)
        self.image_size = QLabel()
        self.image_size.setWordWrap(True)
        self.image_size.setToolTip("The size the images are resized to for the chosen model. To choose another, "
                                   "set the size option (studio --data-option size=N on the command line).")
        self.image_size.hide()
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #c0392b;")
        self.problem.hide()
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.grid = ImageGrid(cell=96, columns=8)
        self.preview = QStackedWidget()
        self.preview.addWidget(self.table)
        self.preview.addWidget(self.grid)
        self.balance = BarChart("Examples per class", "examples")
        self.balance.setToolTip("How many examples each class has. Very uneven bars make rare classes hard to learn.")
        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(self.preview)
        lower.addWidget(self.balance)
        lower.setSizes([260, 300])
        self.splitter_right = lower

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.title)
        right_layout.addWidget(self.description)
        right_layout.addWidget(self.facts)
        right_layout.addWidget(self.image_size)
        right_layout.addWidget(self.problem)
        right_layout.addWidget(QLabel("Preview"))
        right_layout.addWidget(lower, 1)

        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([320, 800])
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)

    # -- user actions -------------------------------------------------------------------------
    @Slot()
    def open_csv(self) -> None:
        path = dialogs.open_file(self, "data", "Open a CSV file", "CSV files (*.csv *.tsv *.txt);;All files (*)")
        if path:
            self._use_file("csv", path)

    @Slot()
    def open_image_folder(self) -> None:
        path = dialogs.open_folder(self, "data", "Open a folder of images (one sub-folder per class)")
        if path:
            self._use_file("images", path)

    @Slot()
    def open_numpy(self) -> None:
        path = dialogs.open_file(self, "data", "Open a NumPy file", "NumPy files (*.npz *.npy);;All files (*)")
        if path:
            self._use_file("numpy", path)

    def _use_file(self, source: str, path: str) -> None:
        spec = self.state.data
        self.state.set_data(DataSpec(source=source, name=os.path.basename(path.rstrip("/\\")) or source, path=path,
                                     val_fraction=spec.val_fraction, test_fraction=spec.test_fraction, seed=spec.seed))

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_builtin_picked(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._syncing or item is None:
            return
        spec = self.state.data
        self.state.set_data(DataSpec(source="builtin", name=item.data(Qt.ItemDataRole.UserRole),
                                     val_fraction=spec.val_fraction, test_fraction=spec.test_fraction, seed=spec.seed))

    @Slot()
    def _on_controls(self, *_: object) -> None:
        if self._syncing:
            return
        spec = self.state.data
        target = spec.target
        if spec.source == "csv" and self.target_combo.currentIndex() >= 0:
            target = self.target_combo.currentText() or None
        self.state.set_data(replace(spec, target=target, val_fraction=self.val_fraction.value() / 100,
                                    test_fraction=self.test_fraction.value() / 100, seed=self.seed.value()))

    def select_builtin(self, name: str) -> None:
        for i in range(self.builtin_list.count()):
            item = self.builtin_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                self.builtin_list.setCurrentItem(item)
                return

    # -- state -> widgets ---------------------------------------------------------------------
    @Slot(object)
    def _on_catalogue(self, catalogue: Catalogue) -> None:
        self._syncing = True
        self.builtin_list.clear()
        for d in catalogue.datasets:
            item = QListWidgetItem(f"{d['name']}  ({d.get('task', '')}, {d.get('input_kind', '')})")
            item.setData(Qt.ItemDataRole.UserRole, d["name"])
            item.setToolTip(d.get("description", ""))
            self.builtin_list.addItem(item)
        self._syncing = False
        self._show_spec(self.state.data)

    @Slot(object)
    def _on_data_changed(self, spec: DataSpec) -> None:
        self._show_spec(spec)

    def _show_spec(self, spec: DataSpec) -> None:
        self._syncing = True
        try:
            if spec.source == "builtin":
                self.select_builtin(spec.name)
                self.source_label.setText("")
                info = self.state.dataset_info(spec.name) or {}
                self.title.setText(spec.name)
                self.description.setText(info.get("description", ""))
            else:
                self.builtin_list.clearSelection()
                self.builtin_list.setCurrentItem(None)
                self.source_label.setText(f"{SOURCE_NAMES.get(spec.source, spec.source)}: {spec.path}")
                self.title.setText(os.path.basename((spec.path or spec.name).rstrip("/\\")))
                self.description.setText(f"{SOURCE_NAMES.get(spec.source, spec.source)} at {spec.path}")
            self.target_combo.setEnabled(spec.source == "csv")
            if spec.source != "csv":
                self.target_combo.clear()
            elif spec.target and self.target_combo.findText(spec.target) >= 0:
                self.target_combo.setCurrentText(spec.target)
            self.val_fraction.setValue(round(spec.val_fraction * 100, 2))
            self.test_fraction.setValue(round(spec.test_fraction * 100, 2))
            self.seed.setValue(spec.seed)
        finally:
            self._syncing = False
        self._inspect_timer.start()

    @Slot(bool, str)
    def _on_running(self, running: bool, _operation: str) -> None:
        for w in (self.builtin_list, self.open_csv_button, self.open_images_button, self.open_numpy_button,
                  self.target_combo, self.val_fraction, self.test_fraction, self.seed):
            w.setEnabled(not running)
        if not running:
            self.target_combo.setEnabled(self.state.data.source == "csv")

    # -- inspection ---------------------------------------------------------------------------
    @Slot()
    def inspect_now(self) -> None:
        self._inspect_timer.stop()
        self.facts.setText("Reading the data…")
        request = InspectDataRequest(data=self.state.data, preview_rows=20, model=self.state.model)
        self.tasks.submit("inspect_data", request, self._on_summary, self._on_error, key="inspect_data")

    @Slot(object)
    def _on_model_changed(self, _spec: object) -> None:
        if self.state.data.source == "images":  # the model picks an image folder's size
            self._inspect_timer.start()

    def _on_summary(self, summary: DataSummary) -> None:
        self.inspections += 1
        self.summary = summary
        self.problem.hide()
        self.facts.setText(describe_summary(summary))
        self.image_size.setText(summary.image_size_note)
        self.image_size.setVisible(bool(summary.image_size_note))
        if summary.description and self.state.data.source == "builtin":
            self.description.setText(summary.description)
        self._fill_targets(summary)
        self._fill_preview(summary)
        if summary.class_counts:
            names = list(summary.class_names) or [str(i) for i in range(len(summary.class_counts))]
            self.balance.set_bars(names, summary.class_counts)
            self.balance.show()
        else:
            self.balance.set_bars([], [])
            self.balance.hide()
        self.state.set_data_summary(summary)

    def _on_error(self, error: dict) -> None:
        self.summary = None
        self.problem.setText(error_text(error))
        self.problem.show()
        self.facts.setText("This data cannot be used as it is.")
        self.table.clear()
        self.table.setRowCount(0)
        self.grid.clear()
        self.balance.set_bars([], [])
        self.state.set_data_summary(None)
        self.state.report_error(error)

    def _fill_targets(self, summary: DataSummary) -> None:
        spec = self.state.data
        if spec.source != "csv":
            return
        columns = [str(c) for c in summary.preview.get("columns", [])]
        self._syncing = True
        try:
            if [self.target_combo.itemText(i) for i in range(self.target_combo.count())] != columns:
                self.target_combo.clear()
                self.target_combo.addItems(columns)
            self.target_combo.setCurrentText(spec.target or (columns[-1] if columns else ""))
            self.target_combo.setEnabled(True)
        finally:
            self._syncing = False

    def _fill_preview(self, summary: DataSummary) -> None:
        preview = summary.preview
        kind = preview.get("kind")
        if kind == "images":
            self.grid.set_images(preview.get("images", []), [str(x) for x in preview.get("labels", [])])
            self.preview.setCurrentWidget(self.grid)
            self._share_space(self.grid.cell + 60)
            return
        if kind == "series":
            rows = preview.get("rows", [])
            columns = [f"t{i}" for i in range(len(rows[0]) if rows else 0)] + ["target"]
            rows = [list(r) + [t] for r, t in zip(rows, preview.get("targets", []))]
        else:
            columns = [str(c) for c in preview.get("columns", [])]
            rows = preview.get("rows", [])
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(columns)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(_cell(value)))
        self.table.resizeColumnsToContents()
        self.preview.setCurrentWidget(self.table)
        self._share_space(320)

    def _share_space(self, preview_height: int) -> None:
        """Give the preview what it needs (a row of pictures needs less than a table) and the rest to the chart."""
        total = sum(self.splitter_right.sizes())
        if total > 0:
            self.splitter_right.setSizes([min(preview_height, total // 2), total - min(preview_height, total // 2)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def _fraction(value: float, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, 90.0)
    box.setDecimals(1)
    box.setSingleStep(5.0)
    box.setSuffix(" %")
    box.setValue(value)
    box.setToolTip(tip)
    return box
