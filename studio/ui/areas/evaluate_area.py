"""The Evaluate area (REQ-U09): confusion matrix with drill-down, per-class metrics, mistakes, predict.

Input: ``AppState.trained_model`` (from a run or a loaded checkpoint). It runs ``evaluate`` in the
shared worker when a model arrives or the split changes; clicking a cell asks ``inspect_data``
for exactly the samples the cell counts; the most confident mistakes come the same way. The
Try it tab predicts from a file, and for 8x8 digit models from a drawing pad, live.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.requests import DataSpec, EvaluateRequest, InspectDataRequest, PredictRequest
from studio.backend.core.results import DataSummary, EvaluateResult, PredictResult
from studio.ui import dialogs
from studio.ui.errors import error_text
from studio.ui.state import AppState, TrainedModelRef
from studio.ui.tasks import TaskRunner
from studio.ui.widgets.bar_chart import BarChart
from studio.ui.widgets.confusion_heatmap import ConfusionHeatmap
from studio.ui.widgets.drawing_pad import DrawingPad
from studio.ui.widgets.image_grid import ImageGrid, to_qimage

__all__ = ["EvaluateArea"]

SPLITS = (("val", "Validation split"), ("test", "Test split"), ("train", "Training split"))
MISTAKES_SHOWN = 24


class SamplesView(QStackedWidget):
    """Samples as an image grid or a table, whichever the data is."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = ImageGrid(cell=56, columns=6)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.addWidget(self.grid)
        self.addWidget(self.table)
        self.captions: list[str] = []

    def show_samples(self, preview: dict[str, Any], captions: list[str]) -> None:
        self.captions = captions
        if preview.get("kind") == "images":
            self.grid.set_images(preview.get("images", []), captions)
            self.setCurrentWidget(self.grid)
            return
        rows = preview.get("rows", [])
        columns = ["sample"] + [str(c) for c in preview.get("columns", [f"t{i}" for i in range(len(rows[0]) if rows else 0)])]
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(columns)
        for r, row in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(captions[r] if r < len(captions) else ""))
            for c, value in enumerate(row if isinstance(row, list) else [row]):
                text = f"{value:.4g}" if isinstance(value, float) else str(value)
                self.table.setItem(r, c + 1, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.setCurrentWidget(self.table)

    def clear(self) -> None:
        self.captions = []
        self.grid.clear()
        self.table.clear()
        self.table.setRowCount(0)


class EvaluateArea(QWidget):
    def __init__(self, state: AppState, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.tasks = state, tasks
        self.result: EvaluateResult | None = None
        self.model: TrainedModelRef | None = None
        self.cell: tuple[int, int] | None = None
        self.cell_indices: list[int] = []
        self.mistake_indices: list[int] = []
        self.mistake_confidences: list[float] = []
        self.prediction: PredictResult | None = None
        self.file_prediction: PredictResult | None = None
        self._pad_timer = QTimer(self)
        self._pad_timer.setSingleShot(True)
        self._pad_timer.setInterval(60)
        self._pad_timer.timeout.connect(self.predict_drawing)
        self._build()
        state.trained_model_changed.connect(self._on_model)
        self._on_model(state.trained_model)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_label = QLabel("No model yet: train one in the Train area or load a checkpoint in Export.")
        self.model_label.setWordWrap(True)
        self.split_combo = QComboBox()
        for value, text in SPLITS:
            self.split_combo.addItem(text, value)
        self.split_combo.setToolTip("Which examples to measure the model on. Validation and test were never "
                                    "trained on.")
        self.split_combo.currentIndexChanged.connect(self.evaluate_now)
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Measure the model on the chosen split again.")
        self.evaluate_button.clicked.connect(self.evaluate_now)
        top = QHBoxLayout()
        top.addWidget(self.model_label, 1)
        top.addWidget(self.split_combo)
        top.addWidget(self.evaluate_button)
        self.metrics_label = QLabel()
        self.metrics_label.setStyleSheet("font-size: 13pt; font-weight: 600;")
        self.metrics_label.setWordWrap(True)

        self.heatmap = ConfusionHeatmap()
        self.heatmap.setToolTip("Rows: the true class; columns: what the model said. Click a cell to see its samples.")
        self.heatmap.cell_clicked.connect(self.open_cell)
        self.cell_label = QLabel("Click a cell of the matrix to see the samples it counts.")
        self.cell_label.setWordWrap(True)
        self.cell_samples = SamplesView()
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.heatmap)
        cell_box = QWidget()
        cb = QVBoxLayout(cell_box)
        cb.setContentsMargins(0, 0, 0, 0)
        cb.addWidget(self.cell_label)
        cb.addWidget(self.cell_samples, 1)
        left.addWidget(cell_box)
        left.setSizes([380, 220])

        self.per_class = QTableWidget(0, 5)
        self.per_class.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Examples"])
        self.per_class.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.per_class.verticalHeader().hide()
        self.per_class.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.per_class.setToolTip("Precision: when the model says this class, how often it is right. "
                                  "Recall: of this class, how much the model finds. F1 combines both.")
        self.mistakes_label = QLabel()
        self.mistakes_label.setWordWrap(True)
        self.mistakes = SamplesView()
        mistakes_tab = QWidget()
        mt = QVBoxLayout(mistakes_tab)
        mt.addWidget(self.mistakes_label)
        mt.addWidget(self.mistakes, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.per_class, "Per class")
        self.tabs.addTab(mistakes_tab, "Most confident mistakes")
        self.tabs.addTab(self._build_predict(), "Try it")

        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setSizes([480, 620])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.splitter, 1)

    def _build_predict(self) -> QWidget:
        self.pad = DrawingPad()
        self.pad.drawn.connect(self._pad_timer.start)
        self.clear_pad_button = QPushButton("Clear")
        self.clear_pad_button.setToolTip("Wipe the pad to draw another digit.")
        self.clear_pad_button.clicked.connect(self.pad.clear)
        self.pad_answer = QLabel("Draw a digit")
        self.pad_answer.setStyleSheet("font-size: 20pt; font-weight: 700;")
        self.pad_probs = BarChart("How sure the model is", "probability", y_max=1.0)
        self.pad_seen = QLabel()
        self.pad_seen.setFixedSize(96, 96)
        self.pad_seen.setToolTip("What the model sees: your drawing at the 8 x 8 resolution of the digits data.")
        self.pad_seen.setStyleSheet("border: 1px solid #777;")
        pad_col = QVBoxLayout()
        pad_col.addWidget(self.pad)
        pad_col.addWidget(self.clear_pad_button)
        pad_col.addWidget(QLabel("What the model sees:"))
        pad_col.addWidget(self.pad_seen)
        pad_col.addStretch(1)
        answer_col = QVBoxLayout()
        answer_col.addWidget(self.pad_answer)
        answer_col.addWidget(self.pad_probs, 1)
        self.pad_box = QWidget()
        pad_row = QHBoxLayout(self.pad_box)
        pad_row.addLayout(pad_col)
        pad_row.addLayout(answer_col, 1)

        self.predict_file_button = QPushButton("Predict from a file…")
        self.predict_file_button.setToolTip("Pick a CSV file, an image, a folder of images or a NumPy file "
                                            "and see what the model says for each example.")
        self.predict_file_button.clicked.connect(self.predict_file)
        self.predictions = QTableWidget(0, 3)
        self.predictions.setHorizontalHeaderLabels(["Example", "Prediction", "Top choices"])
        self.predictions.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.predictions.horizontalHeader().setStretchLastSection(True)
        page = QWidget()
        col = QVBoxLayout(page)
        col.addWidget(self.pad_box)
        col.addWidget(self.predict_file_button)
        col.addWidget(self.predictions, 1)
        return page

    # -- model and evaluation -------------------------------------------------------------------
    def _data(self) -> DataSpec:
        model = self.model
        return model.data if model is not None and model.data is not None else self.state.data

    @Slot(object)
    def _on_model(self, ref: TrainedModelRef | None) -> None:
        self.model = ref
        enabled = ref is not None
        for w in (self.split_combo, self.evaluate_button, self.predict_file_button, self.pad, self.clear_pad_button):
            w.setEnabled(enabled)
        is_digits = enabled and self._data().source == "builtin" and self._data().name == "digits"
        self.pad_box.setVisible(is_digits)
        if ref is None:
            return
        metrics = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in ref.metrics.items()
                            if k.startswith("val_")) if ref.metrics else ""
        self.model_label.setText(f"Model: {ref.label}" + (f" ({metrics})" if metrics else ""))
        self.evaluate_now()

    @Slot()
    def evaluate_now(self, *_: object) -> None:
        if self.model is None:
            return
        self.metrics_label.setText("Measuring…")
        request = EvaluateRequest(model=self.model.handle, data=self._data(), split=self.split_combo.currentData())
        self.tasks.submit("evaluate", request, self._on_result, self._on_error, key="evaluate")

    def _on_result(self, result: EvaluateResult) -> None:
        self.result = result
        m = result.metrics
        parts = []
        if "accuracy" in m:
            parts.append(f"Accuracy {m['accuracy']:.1%}")
        parts += [f"{k.replace('_', ' ')} {v:.4g}" for k, v in m.items() if k != "accuracy"]
        self.metrics_label.setText(" · ".join(parts) + f" · {result.num_samples:,} examples")
        self.heatmap.set_matrix(result.confusion, result.class_names)
        self.heatmap.setVisible(bool(result.confusion))
        self.per_class.setRowCount(len(result.per_class))
        for row, pc in enumerate(result.per_class):
            cells = [str(pc.get("class", row)), f"{pc.get('precision', 0):.3f}", f"{pc.get('recall', 0):.3f}",
                     f"{pc.get('f1', 0):.3f}", str(pc.get("support", ""))]
            for col, text in enumerate(cells):
                self.per_class.setItem(row, col, QTableWidgetItem(text))
        self.cell = None
        self.cell_indices = []
        self.cell_samples.clear()
        self.cell_label.setText("Click a cell of the matrix to see the samples it counts.")
        self._load_mistakes(result)

    def _on_error(self, error: dict) -> None:
        self.metrics_label.setText(error_text(error))
        self.state.report_error(error)

    # -- drill-down ---------------------------------------------------------------------------
    def _name(self, index: int) -> str:
        names = self.result.class_names if self.result is not None else ()
        return names[index] if 0 <= index < len(names) else str(index)

    @Slot(int, int)
    def open_cell(self, true: int, predicted: int) -> None:
        """Show the samples a confusion cell counts (true class ``true``, predicted ``predicted``)."""
        result = self.result
        if result is None or not result.sample_indices:
            return
        picks = [(i, c) for i, t, p, c in zip(result.sample_indices, result.targets, result.predicted,
                                              result.confidence) if t == true and p == predicted]
        self.cell = (true, predicted)
        self.cell_indices = [i for i, _ in picks]
        verdict = "right" if true == predicted else "wrong"
        self.cell_label.setText(f"True {self._name(true)}, predicted {self._name(predicted)}: "
                                f"{len(picks)} example{'s' if len(picks) != 1 else ''} ({verdict})"
                                + (" — showing the first 500" if len(picks) > 500 else ""))
        if not picks:
            self.cell_samples.clear()
            return
        captions = [f"#{i} · {c:.0%}" for i, c in picks[:500]]
        request = InspectDataRequest(data=self._data(), indices=tuple(self.cell_indices[:500]))
        self.tasks.submit("inspect_data", request, lambda s: self.cell_samples.show_samples(s.preview, captions),
                          self._on_error, key="cell")

    def _load_mistakes(self, result: EvaluateResult) -> None:
        wrong = sorted(((c, i, t, p) for i, t, p, c in zip(result.sample_indices, result.targets, result.predicted,
                                                          result.confidence) if t != p), reverse=True)
        shown = wrong[:MISTAKES_SHOWN]
        self.mistake_indices = [i for _, i, _, _ in shown]
        self.mistake_confidences = [c for c, _, _, _ in shown]
        if not result.sample_indices:
            self.mistakes_label.setText("Per-example results are not available for this kind of task.")
            self.mistakes.clear()
            return
        if not shown:
            self.mistakes_label.setText("No mistakes on this split.")
            self.mistakes.clear()
            return
        self.mistakes_label.setText(f"{len(wrong)} mistakes; the {len(shown)} the model was surest about, "
                                    "surest first:")
        captions = [f"#{i}: {self._name(t)} → {self._name(p)} ({c:.0%})" for c, i, t, p in shown]
        request = InspectDataRequest(data=self._data(), indices=tuple(self.mistake_indices))
        self.tasks.submit("inspect_data", request, lambda s: self._show_mistakes(s, captions), self._on_error,
                          key="mistakes")

    def _show_mistakes(self, summary: DataSummary, captions: list[str]) -> None:
        self.mistakes.show_samples(summary.preview, captions)

    # -- prediction ---------------------------------------------------------------------------
    @Slot()
    def predict_drawing(self) -> None:
        if self.model is None:
            return
        if self.pad.is_empty():
            self.pad_seen.clear()
            self.pad_answer.setText("Draw a digit")
            self.pad_probs.set_bars([], [])
            return
        digit = self.pad.digit()
        self.pad_seen.setPixmap(QPixmap.fromImage(to_qimage(digit)).scaled(
            96, 96, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        request = PredictRequest(model=self.model.handle, inputs=[[digit.tolist()]], top_k=3)
        self.tasks.submit("predict", request, self._on_pad_prediction, self._on_error, key="pad")

    def _on_pad_prediction(self, result: PredictResult) -> None:
        self.prediction = result
        if not result.labels:
            return
        probs = result.probabilities[0] if result.probabilities else ()
        best = max(probs) if probs else 0.0
        self.pad_answer.setText(f"It looks like a {result.labels[0]} ({best:.0%} sure)")
        names = self.result.class_names if self.result is not None and self.result.class_names else \
            [str(i) for i in range(len(probs))]
        self.pad_probs.set_bars(list(names), list(probs))

    @Slot()
    def predict_file(self) -> None:
        if self.model is None:
            return
        path = dialogs.open_file(self, "predict", "Predict from a file",
                                 "Data files (*.csv *.npy *.npz *.png *.jpg *.jpeg *.bmp);;All files (*)")
        if not path:
            return
        self.tasks.submit("predict", PredictRequest(model=self.model.handle, inputs=path, top_k=3),
                          self._on_file_prediction, self._on_error, key="predict_file")

    def _on_file_prediction(self, result: PredictResult) -> None:
        self.file_prediction = result
        rows = result.labels or tuple(", ".join(f"{v:.4g}" for v in row) for row in result.values)
        self.predictions.setRowCount(len(rows))
        for r, label in enumerate(rows):
            top = ", ".join(f"{name} {p:.0%}" for name, p in result.top_k[r]) if r < len(result.top_k) else ""
            for c, text in enumerate((str(r + 1), str(label), top)):
                self.predictions.setItem(r, c, QTableWidgetItem(text))
