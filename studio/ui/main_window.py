"""The main window: set up a run, press Train, watch it live (REQ-U01..U04 first cut).

The window knows the backend only through the handler registry and the core contracts; the
training runs in a worker thread behind :class:`RunBridge`, whose batched events feed the
charts and the progress line.
"""

from __future__ import annotations

import logging
import math
import time

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.events import EpochStats, RunCancelled, RunFailed, RunFinished, RunStarted, StepStats
from studio.backend.core.handler_utils import format_duration
from studio.backend.core.registry import HandlerRegistry, default_registry
from studio.backend.core.requests import DataSpec, ModelSpec, TrainConfig, TrainRequest
from studio.ui.charts import LiveChart
from studio.ui.run_bridge import RunBridge

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, registry: HandlerRegistry | None = None, backend: str = "pytorch") -> None:
        super().__init__()
        self.registry = registry or default_registry()
        self.backend = backend
        self.setWindowTitle("Studio")
        self.resize(1100, 680)
        self.bridge = RunBridge(self)
        self.bridge.events.connect(self._on_events)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.failed.connect(self._on_failed)
        self.last_result: object | None = None
        self.last_error: dict | None = None
        self._total_steps = 0
        self._start_step = 0
        self._started_at = 0.0
        self._build()
        self._set_running(False)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        setup = QWidget()
        form_box = QGroupBox("Run")
        form = QFormLayout(form_box)
        self.data_label = QLabel("Handwritten digits (built-in, 1,797 images of 8x8 pixels)")
        self.data_label.setWordWrap(True)
        self.model_label = QLabel("MLP (small fully connected network)")
        self.epochs = _spin(1, 10_000, 20, "How many times the model sees the whole training set.")
        self.batch_size = _spin(1, 65_536, 64, "How many examples the model looks at before each update.")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 10.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.lr.setToolTip("How big each update step is. Smaller is slower but steadier.")
        form.addRow("Data", self.data_label)
        form.addRow("Model", self.model_label)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Start training (Ctrl+Return)")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause or resume between steps (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and keep what was trained (Esc)")
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        QShortcut(QKeySequence("Ctrl+Return"), self, self.start_training)
        QShortcut(QKeySequence("Ctrl+P"), self, self.toggle_pause)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop_training)

        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready. Press Train to start.")
        self.status.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        left = QVBoxLayout(setup)
        left.addWidget(form_box)
        left.addLayout(buttons)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addWidget(self.error_label)
        left.addStretch(1)

        self.loss_chart = LiveChart("Loss", "loss")
        self.metric_chart = LiveChart("Validation accuracy", "accuracy", x_label="epoch")
        charts = QSplitter(Qt.Orientation.Vertical)
        charts.addWidget(self.loss_chart)
        charts.addWidget(self.metric_chart)
        charts.setSizes([420, 220])

        splitter = QSplitter()
        splitter.addWidget(setup)
        splitter.addWidget(charts)
        splitter.setSizes([330, 770])
        self.setCentralWidget(splitter)
        self.statusBar().showMessage("Studio is ready")

    # -- actions --------------------------------------------------------------------------------
    def training_request(self) -> TrainRequest:
        return TrainRequest(
            data=DataSpec(source="builtin", name="digits"),
            model=ModelSpec(name="mlp"),
            config=TrainConfig(epochs=self.epochs.value(), batch_size=self.batch_size.value(), lr=self.lr.value()),
        )

    @Slot()
    def start_training(self) -> None:
        if self.bridge.running:
            return
        self.loss_chart.clear_series()
        self.metric_chart.clear_series()
        self.error_label.hide()
        self.last_error = None
        self.progress.setValue(0)
        self.status.setText("Starting…")
        registry, backend = self.registry, self.backend

        def call(request: TrainRequest, **kwargs: object) -> object:  # runs in the worker thread
            return registry.get(backend, "train")(request, **kwargs)

        self.bridge.start(call, self.training_request())
        self._set_running(True)

    @Slot()
    def toggle_pause(self) -> None:
        if not self.bridge.running:
            return
        if self.bridge.control.paused:
            self.bridge.resume()
            self.pause_button.setText("Pause")
            self.status.setText("Resumed.")
        else:
            self.bridge.pause()
            self.pause_button.setText("Resume")
            self.status.setText("Paused. Press Resume to go on.")

    @Slot()
    def stop_training(self) -> None:
        if self.bridge.running:
            self.status.setText("Stopping after the current step…")
            self.bridge.cancel()

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        for w in (self.epochs, self.batch_size, self.lr):
            w.setEnabled(not running)
        if not running:
            self.pause_button.setText("Pause")

    # -- events ---------------------------------------------------------------------------------
    @Slot(list)
    def _on_events(self, batch: list) -> None:
        steps: list[float] = []
        losses: list[float] = []
        last_step: StepStats | None = None
        for event in batch:
            if isinstance(event, StepStats):
                steps.append(event.step)
                losses.append(event.loss)
                last_step = event
            elif isinstance(event, EpochStats):
                if "loss" in event.val:
                    self.loss_chart.add_points("val", [event.step], [event.val["loss"]])
                if "accuracy" in event.val:
                    self.metric_chart.add_points("val", [event.epoch + 1], [event.val["accuracy"]])
            elif isinstance(event, RunStarted):
                self._total_steps = event.total_epochs * event.steps_per_epoch
                self._start_step = event.start_step
                self._started_at = time.monotonic()
                self.status.setText(f"Training on {event.device}…")
            elif isinstance(event, (RunFinished, RunFailed, RunCancelled)):
                pass
        if steps:
            self.loss_chart.add_points("train", steps, losses)
        self.loss_chart.redraw()
        self.metric_chart.redraw()
        if last_step is not None:
            self._show_progress(last_step)

    def _show_progress(self, event: StepStats) -> None:
        total = max(self._total_steps, 1)
        self.progress.setValue(int(100 * event.step / total))
        elapsed = time.monotonic() - self._started_at
        done = event.step - self._start_step
        eta = elapsed / done * (total - event.step) if done > 0 else math.nan
        self.status.setText(
            f"Epoch {event.epoch + 1} · step {event.step}/{total} · loss {event.loss:.4f} · "
            f"{event.samples_per_s:,.0f} samples/s · elapsed {format_duration(elapsed)} · ETA {format_duration(eta)}"
        )

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self.last_result = result
        self._set_running(False)
        status = getattr(result, "status", "finished")
        metrics = getattr(result, "final_metrics", {}) or {}
        acc = metrics.get("val_accuracy")
        text = "Stopped; what was trained is kept." if status == "cancelled" else "Finished."
        if acc is not None:
            text += f" Validation accuracy {acc:.1%}."
        if status != "cancelled":
            self.progress.setValue(100)
        self.status.setText(text)
        self.statusBar().showMessage(text, 10_000)

    @Slot(dict)
    def _on_failed(self, error: dict) -> None:
        self.last_error = error
        self._set_running(False)
        self.error_label.setText(f"{error.get('message', 'The run failed.')}  (code: {error.get('code')})")
        self.error_label.show()
        self.status.setText("The run failed. See the message below; details are in the log file.")

    # -- closing --------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.bridge.running:
            answer = QMessageBox.question(
                self, "Stop training?",
                "A run is in progress. Stop it and close Studio? What was trained so far is kept.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.bridge.cancel()
            self.bridge.wait()
        event.accept()


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    return box
