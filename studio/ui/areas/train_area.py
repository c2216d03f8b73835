"""The Train area (REQ-U02..U04, U14, U15): settings, run controls, progress and the live dashboard.

Input: ``AppState`` (data, model, configuration, device). Output: runs through the shared
:class:`RunBridge` (the worker thread), a ``TrainedModelRef`` in the state when a run ends, and
the dashboard fed from the coalesced event batches. Train more continues the last run with its
optimiser state (``TrainRequest.continue_from``); every run autosaves (see :mod:`studio.ui.autosave`).
"""

from __future__ import annotations

import math
import pathlib
import time
from dataclasses import replace

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.events import RunStarted, RunWarning, StepStats
from studio.backend.core.formatting import format_duration
from studio.backend.core.requests import RuntimeConfig, TrainConfig, TrainRequest
from studio.backend.core.results import Catalogue
from studio.ui import dialogs
from studio.ui.autosave import Autosave
from studio.ui.memory import process_memory_bytes
from studio.ui.run_bridge import RunBridge
from studio.ui.state import AppState, TrainedModelRef
from studio.ui.tasks import Backend
from studio.ui.widgets.dashboard import Dashboard
from studio.ui.widgets.device_selector import DeviceSelector
from studio.ui.widgets.panels import side_panel

__all__ = ["TrainArea"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "cosine", "one_cycle", "reduce_on_plateau")
SCHEDULE_TEXT = {"constant": "constant", "step": "step down every few epochs", "cosine": "cosine decay",
                 "one_cycle": "one cycle (warm up, then decay)", "reduce_on_plateau": "lower when stuck"}


class TrainArea(QWidget):
    go_to_area = Signal(str)  # "Data" or "Model": the person wants to change what trains

    def __init__(self, state: AppState, bridge: RunBridge, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.bridge, self.backend = state, bridge, backend
        self._syncing = False
        self.last_result: object | None = None
        self.last_error: dict | None = None
        self.last_request: TrainRequest | None = None
        self.autosave_enabled = True
        self.keep_autosave = False  # set when Studio closes mid-run: the next start offers to resume (REQ-U04)
        self._autosave: Autosave | None = None
        self._run_key = ""
        self._total_steps = 0
        self._total_epochs = 0
        self._start_step = 0
        self._started_at = 0.0
        self._last_step: StepStats | None = None
        self._next_progress = 0.0
        self._next_memory = 0.0
        self._build()
        self.bridge.events.connect(self._on_events)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.failed.connect(self._on_failed)
        state.catalogue_changed.connect(self._on_catalogue)
        state.config_changed.connect(self._show_config)
        state.runtime_changed.connect(self._show_runtime)
        state.data_changed.connect(self._show_setup)
        state.model_changed.connect(self._show_setup)
        state.data_summary_changed.connect(self._show_setup)
        state.running_changed.connect(self._on_running)
        self._show_config(state.config)
        self._show_runtime(state.runtime)
        self._show_setup()
        self._set_running(False)

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        setup_box = QGroupBox("What trains")
        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        change_data = QPushButton("Change data…")
        change_data.setToolTip("Go to the Data area to pick another dataset or open a file.")
        change_data.clicked.connect(lambda: self.go_to_area.emit("Data"))
        change_model = QPushButton("Change model…")
        change_model.setToolTip("Go to the Model area to pick another architecture or size.")
        change_model.clicked.connect(lambda: self.go_to_area.emit("Model"))
        setup = QFormLayout(setup_box)
        setup.addRow("Data", self.data_label)
        setup.addRow("Model", self.model_label)
        links = QHBoxLayout()
        links.addWidget(change_data)
        links.addWidget(change_model)
        setup.addRow(links)

        settings_box = QGroupBox("Training settings")
        self.epochs = _spin(1, 100_000, 20, "How many times the model sees the whole training set.")
        self.batch_size = _spin(1, 65_536, 64, "How many examples the model looks at before each update.")
        self.optimizer = QComboBox()
        self.optimizer.setToolTip("The rule that updates the weights. Adam is a safe first choice.")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 10.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.lr.setToolTip("How big each update step is. Smaller is slower but steadier.")
        self.schedule = QComboBox()
        self.schedule.setToolTip("How the learning rate changes during training.")
        self.weight_decay = QDoubleSpinBox()
        self.weight_decay.setDecimals(5)
        self.weight_decay.setRange(0.0, 1.0)
        self.weight_decay.setSingleStep(1e-4)
        self.weight_decay.setToolTip("Gently pulls the weights towards zero to fight over-fitting (0 turns it off).")
        self.patience = _spin(0, 1000, 0, "Stop when validation has not improved for this many epochs "
                                          "and keep the best epoch (0 never stops early).")
        self._fill_combo(self.optimizer, OPTIMIZERS, {})
        self._fill_combo(self.schedule, SCHEDULES, SCHEDULE_TEXT)
        form = QFormLayout(settings_box)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Optimiser", self.optimizer)
        form.addRow("Learning rate", self.lr)
        form.addRow("Schedule", self.schedule)
        form.addRow("Weight decay", self.weight_decay)
        form.addRow("Stop early after", self.patience)
        for w in (self.epochs, self.batch_size, self.patience):
            w.valueChanged.connect(self._on_settings)
        for w in (self.lr, self.weight_decay):
            w.valueChanged.connect(self._on_settings)
        for w in (self.optimizer, self.schedule):
            w.currentIndexChanged.connect(self._on_settings)
        self.settings_widgets = [self.epochs, self.batch_size, self.optimizer, self.lr, self.schedule,
                                 self.weight_decay, self.patience]

        device_box = QGroupBox("Device")
        self.device = DeviceSelector()
        self.device.changed.connect(self._on_device)
        self.deterministic = QCheckBox("Repeatable results")
        self.deterministic.setToolTip("The same settings give exactly the same model (a little slower on GPUs).")
        self.deterministic.toggled.connect(self._on_device)
        d = QVBoxLayout(device_box)
        d.addWidget(self.device)
        d.addWidget(self.deterministic)

        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Start training with these settings (Ctrl+Return)")
        self.train_button.setDefault(True)
        self.train_button.setMinimumHeight(34)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause between steps; press again to resume (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and keep what was trained (Esc)")
        self.train_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.more_epochs = _spin(1, 100_000, 5, "How many more epochs Train more adds to the last run.")
        self.more_button = QPushButton("Train more")
        self.more_button.setToolTip("Continue the last run for more epochs, keeping its optimiser state (Ctrl+M)")
        self.more_button.clicked.connect(self.train_more)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        more = QHBoxLayout()
        more.addWidget(self.more_button)
        more.addWidget(QLabel("by"))
        more.addWidget(self.more_epochs)
        more.addWidget(QLabel("epochs"))
        more.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready. Press Train to start.")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(40)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        left = QWidget()
        col = QVBoxLayout(left)
        col.addWidget(setup_box)
        col.addWidget(settings_box)
        col.addWidget(device_box)
        col.addLayout(buttons)
        col.addLayout(more)
        col.addWidget(self.progress)
        col.addWidget(self.status)
        col.addStretch(1)
        scroll = side_panel(left, 350)

        self.dashboard = Dashboard()
        self.dashboard.budget = self.bridge.budget  # frames and deliveries share the run's GUI time
        self.dashboard.export_requested.connect(self._export_chart)
        self.loss_chart = self.dashboard.loss_chart
        self.metric_chart = self.dashboard.metric_chart
        self.splitter = QSplitter()
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.dashboard)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([360, 880])
        layout = QHBoxLayout(self)
        layout.addWidget(self.splitter)

    @staticmethod
    def _fill_combo(combo: QComboBox, values: tuple[str, ...], texts: dict[str, str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for value in values:
            combo.addItem(texts.get(value, value), value)
        index = combo.findData(current)
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)

    # -- state <-> widgets --------------------------------------------------------------------
    @Slot(object)
    def _on_catalogue(self, catalogue: Catalogue) -> None:
        self._syncing = True
        self._fill_combo(self.optimizer, tuple(catalogue.choices.get("optimizers", OPTIMIZERS)), {})
        self._fill_combo(self.schedule, tuple(catalogue.choices.get("schedules", SCHEDULES)), SCHEDULE_TEXT)
        if catalogue.devices:
            self.device.set_devices(catalogue.devices)
        self._syncing = False
        self._show_config(self.state.config)
        self._show_runtime(self.state.runtime)
        self._show_setup()

    @Slot()
    def _show_setup(self, *_: object) -> None:
        data, model = self.state.data, self.state.model
        summary = self.state.data_summary
        what = data.name if data.source == "builtin" else f"{data.source}: {data.path}"
        if summary is not None:
            what += f" — {summary.num_samples:,} samples, {summary.task}"
        self.data_label.setText(what)
        size = model.preset or ("custom" if model.hparams else "default size")
        self.model_label.setText(f"{model.name} ({size})")

    @Slot(object)
    def _show_config(self, config: TrainConfig) -> None:
        self._syncing = True
        try:
            self.epochs.setValue(config.epochs)
            self.batch_size.setValue(config.batch_size)
            self.optimizer.setCurrentIndex(max(self.optimizer.findData(config.optimizer), 0))
            self.lr.setValue(config.lr)
            self.schedule.setCurrentIndex(max(self.schedule.findData(config.schedule), 0))
            self.weight_decay.setValue(config.weight_decay)
            es = config.early_stopping or {}
            self.patience.setValue(int(es.get("patience", 0)) if es else 0)
            self.device.set_precision(config.precision)
        finally:
            self._syncing = False

    @Slot(object)
    def _show_runtime(self, runtime: RuntimeConfig) -> None:
        self._syncing = True
        try:
            self.device.set_device(runtime.device)
            self.deterministic.setChecked(runtime.deterministic)
        finally:
            self._syncing = False

    @Slot()
    def _on_settings(self, *_: object) -> None:
        if self._syncing:
            return
        patience = self.patience.value()
        early = {"patience": patience, "restore_best": True} if patience > 0 else None
        self.state.update_config(epochs=self.epochs.value(), batch_size=self.batch_size.value(),
                                 optimizer=self.optimizer.currentData() or "adam", lr=self.lr.value(),
                                 schedule=self.schedule.currentData() or "constant",
                                 weight_decay=self.weight_decay.value(), early_stopping=early)

    @Slot()
    def _on_device(self, *_: object) -> None:
        if self._syncing:
            return
        self.state.set_runtime(replace(self.state.runtime, device=self.device.device(),
                                       deterministic=self.deterministic.isChecked()))
        self.state.update_config(precision=self.device.precision())

    # -- actions ------------------------------------------------------------------------------
    def training_request(self) -> TrainRequest:
        return self.state.train_request()

    @Slot()
    def start_training(self) -> None:
        if self.bridge.running:
            return
        request = self.training_request()
        data = request.data.name if request.data.source == "builtin" else request.data.source
        entry = self.dashboard.new_run(f"{request.model.name} on {data}", validation=request.data.val_fraction > 0)
        self._begin(request, entry.key, "Starting…")

    @Slot()
    def train_more(self) -> None:
        result = self.last_result
        if self.bridge.running or result is None or self.last_request is None:
            return
        epochs = int(getattr(result, "epochs_run", 0)) + self.more_epochs.value()
        config = replace(self.last_request.config, epochs=epochs)
        request = replace(self.last_request, config=config, continue_from=result.model, resume_from=None,
                          checkpoint_path=None)  # extended in memory; its autosave ended with the first part
        self.dashboard.continue_run(self._run_key)
        self._begin(request, self._run_key, f"Continuing for {self.more_epochs.value()} more epochs…")

    def resume_interrupted(self, request: TrainRequest, checkpoint: str) -> None:
        """Resume a run that a crash interrupted, from its last autosave (REQ-U04)."""
        if self.bridge.running:
            return
        self.state.set_data(request.data)
        self.state.set_model(request.model)
        self.state.set_config(request.config)
        self.state.set_runtime(request.runtime)
        data = request.data.name if request.data.source == "builtin" else request.data.source
        entry = self.dashboard.new_run(f"{request.model.name} on {data}, resumed",
                                       validation=request.data.val_fraction > 0)
        saver = Autosave(request, checkpoint=pathlib.Path(checkpoint))
        resumed = replace(saver.start(), resume_from=checkpoint)  # keeps autosaving to the same file
        self._begin(resumed, entry.key, "Resuming from the last autosave…", saver)

    def _begin(self, request: TrainRequest, run_key: str, message: str, saver: Autosave | None = None) -> None:
        self._run_key = run_key
        self.last_error = None
        self._autosave = saver
        if saver is None and self.autosave_enabled and request.continue_from is None:
            self._autosave = Autosave(request)
            request = self._autosave.start()
        self.last_request = request
        self.progress.setValue(0)
        self.status.setText(message)
        self._last_step = None
        self._next_progress = 0.0
        self.bridge.owner = self
        # the window's own updates first: once the worker starts, GUI time is taken from its steps (the GIL)
        self.state.set_running("train")
        self._set_running(True)
        self.bridge.start(self.backend.caller("train"), request)

    @Slot()
    def toggle_pause(self) -> None:
        if not self.bridge.running or self.bridge.owner is not self:
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
        if self.bridge.running and self.bridge.owner is self:
            self.status.setText("Stopping after the current step…")
            self.bridge.cancel()

    def _set_running(self, running: bool) -> None:
        busy_elsewhere = bool(self.state.running) and self.state.running != "train"
        self.train_button.setEnabled(not running and not busy_elsewhere)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        can_more = not running and not busy_elsewhere and self.last_result is not None
        self.more_button.setEnabled(can_more)
        self.more_epochs.setEnabled(can_more)
        for w in [*self.settings_widgets, self.device, self.deterministic]:
            w.setEnabled(not running and not busy_elsewhere)
        if not running:
            self.pause_button.setText("Pause")

    @Slot(bool, str)
    def _on_running(self, running: bool, operation: str) -> None:
        if operation != "train":
            self._set_running(False)

    # -- events -------------------------------------------------------------------------------
    @Slot(object)
    def _on_events(self, batch: list) -> None:
        if self.bridge.owner is not self:
            return
        for event in batch:
            if isinstance(event, StepStats):  # nearly every event: checked first
                self._last_step = event
            elif isinstance(event, RunStarted):
                self._total_steps = event.total_epochs * event.steps_per_epoch
                self._total_epochs = event.total_epochs
                self._start_step = event.start_step
                self._started_at = time.monotonic()
                self.status.setText(f"Training on {event.device}…")
            elif isinstance(event, RunWarning):
                self.state.message.emit(event.message)
        self.dashboard.feed(batch)
        self.dashboard.redraw()
        now = time.monotonic()
        if self._last_step is not None and now >= self._next_progress:
            self._next_progress = now + 0.25  # text a person can read; a label per frame costs the trainer
            self._show_progress(self._last_step)

    def _show_progress(self, event: StepStats) -> None:
        total = max(self._total_steps, 1)
        self.progress.setValue(min(100, int(100 * event.step / total)))
        elapsed = time.monotonic() - self._started_at
        done = event.step - self._start_step
        eta = elapsed / done * max(total - event.step, 0) if done > 0 else math.nan
        self.status.setText(
            f"Epoch {event.epoch + 1}/{self._total_epochs} · step {event.step:,}/{total:,} · loss {event.loss:.4f} · "
            f"{event.samples_per_s:,.0f} samples/s · elapsed {format_duration(elapsed)} · "
            f"ETA {format_duration(eta)}")
        memory = event.metrics.get("device_mem_bytes")
        if memory is not None:
            self.device.show_memory(memory, "on the device")
        elif time.monotonic() >= self._next_memory:  # reading /proc costs more than the rest together
            self._next_memory = time.monotonic() + 1.0
            self.device.show_memory(process_memory_bytes(), "(Studio process)")

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        if self.bridge.owner is not self:
            return
        self.last_result = result
        self._end_run()
        status = getattr(result, "status", "finished")
        metrics = getattr(result, "final_metrics", {}) or {}
        text = "Stopped; what was trained is kept." if status == "cancelled" else "Finished."
        summary = []
        for key in ("val_accuracy", "val_mae", "val_loss"):
            if key in metrics:
                value = metrics[key]
                shown = f"{value:.1%}" if key.endswith("accuracy") else f"{value:.4g}"
                text += f" {key.replace('_', ' ').capitalize()} {shown}."
                summary.append(f"{key.replace('_', ' ')} {shown}")
                break
        epochs = getattr(result, "epochs_run", 0)
        self.dashboard.set_summary(self._run_key, f"{epochs} epochs" + (f", {summary[0]}" if summary else ""))
        self.dashboard.add_model(self._run_key, getattr(result, "model", "") or "")
        if status != "cancelled":
            self.progress.setValue(100)
        self.status.setText(text)
        self.state.message.emit(text)
        request = self.last_request
        self.state.set_trained_model(TrainedModelRef(
            handle=getattr(result, "model", ""), label=f"{self._run_key}: {request.model.name if request else ''}",
            source="train", data=request.data if request else None, model=request.model if request else None,
            metrics=dict(metrics)))
        self._set_running(False)

    @Slot(dict)
    def _on_failed(self, error: dict) -> None:
        if self.bridge.owner is not self:
            return
        self.last_error = error
        self._end_run()
        self.status.setText("The run failed. See the message at the top; details are in the log file.")
        self.state.report_error(error)
        self._set_running(False)

    def _end_run(self) -> None:
        if self._autosave is not None:
            if not self.keep_autosave:
                self._autosave.end()
            self._autosave = None
        self.dashboard.end_run()
        if self._last_step is not None:
            self._show_progress(self._last_step)
        self.device.show_memory(None)
        self.state.set_running("")

    @Slot(object)
    def _export_chart(self, chart: object) -> None:
        path = dialogs.save_file(self, "plots", "Save the chart as a PNG picture", "PNG pictures (*.png)",
                                 "chart.png")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            chart.export_png(path)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a failed write is shown, never raised into Qt
            self.state.report_error({"code": "ui.plot_export", "message": f"Could not save the chart to {path}: {exc}.",
                                     "hint": "Choose a folder you can write to."})
            return
        self.state.message.emit(f"Saved the chart to {path}")


def _spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    return box
