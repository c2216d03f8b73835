"""The main window: six areas over one shared state, one worker for runs, one for short calls (REQ-U01).

The window holds no training logic. It builds the :class:`AppState`, the :class:`TaskRunner`
(short handler calls) and the :class:`RunBridge` (train and distill runs), puts the areas in
tabs — Data, Model, Train, Distill, Evaluate, Export — and owns what spans them: menus and
shortcuts, the error banner, project files, settings, themes, crash recovery and closing.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from studio.backend.core.registry import HandlerRegistry
from studio.backend.core.requests import CatalogueRequest, ReleaseRequest, TrainRequest
from studio.backend.core.results import Catalogue
from studio.ui import autosave, dialogs, doctor_dialog, theme
from studio.ui.gui_gc import freeze_long_lived
from studio.ui.settings import Settings
from studio.ui.state import AppState
from studio.ui.tasks import Backend, TaskRunner
from studio.ui.widgets.error_banner import ErrorBanner

if TYPE_CHECKING:
    from studio.ui.run_bridge import RunBridge

__all__ = ["MainWindow", "AREAS"]

log = logging.getLogger(__name__)

AREAS = ("Data", "Model", "Train", "Distill", "Evaluate", "Export")
SWITCH_INTERVAL_S = 0.001
PROJECT_FILTER = "Studio projects (*.studio.json);;JSON files (*.json)"


TIPS = {"Data": "Choose and look at the data", "Model": "Choose the model and its size",
        "Train": "Train and watch it learn", "Distill": "Teach a small model from a big one",
        "Evaluate": "See where the model is right and wrong; try it", "Export": "Save, load and export the model"}


class _Placeholder(QLabel):
    """What an area shows for the moment between the first paint and the areas being built."""

    painted = Signal()

    def __init__(self) -> None:
        super().__init__("Loading…")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)

    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        super().paintEvent(event)
        self.painted.emit()


class MainWindow(QMainWindow):
    """The window. ``lazy=True`` (how ``studio`` starts it) paints a light shell first and builds the
    areas, which import pyqtgraph, right after that first paint; :attr:`ready` fires when they exist."""

    ready = Signal()
    first_painted = Signal()  # lazy windows: the shell is on screen, the areas are about to be built

    def __init__(self, registry: HandlerRegistry | None = None, backend: str = "pytorch", *,
                 restore_settings: bool = True, lazy: bool = False) -> None:
        super().__init__()
        # The trainer thread holds the GIL between its torch calls; a shorter switch interval
        # (5 ms by default) lets the GUI thread in sooner, which keeps the event loop's latency low.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.setWindowTitle("Studio")
        self.resize(1240, 780)
        self.settings = Settings()
        self.backend = Backend(registry, backend)
        self.registry = self.backend.registry
        self.state = AppState(self)
        self.tasks = TaskRunner(self.backend, self)
        self.bridge: RunBridge | None = None
        self._to_release: set[str] = set()  # model handles of forgotten runs, freed once no area uses them
        self.last_operation = "train"
        self._closing = False
        self._built = False
        self._restore = restore_settings
        self._started_backend = False
        self._build_shell()
        if lazy:
            placeholder = _Placeholder()
            placeholder.painted.connect(self._build_after_paint)
            for name in AREAS:
                self.tabs.addTab(placeholder if name == "Train" else QWidget(), name)
            self.tabs.setCurrentIndex(AREAS.index("Train"))
            self._placeholder = placeholder
        else:
            self.build_areas()

    # -- layout ---------------------------------------------------------------------------------
    def _build_shell(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.banner = ErrorBanner()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Starting Studio…")
        self.error_label = self.banner
        self.state.error_raised.connect(self.show_error)
        self.state.message.connect(self._show_message)
        self.state.running_changed.connect(self._on_running)
        self.tasks.error.connect(self.show_error)

    @Slot()
    def _build_after_paint(self) -> None:
        self._placeholder.painted.disconnect(self._build_after_paint)
        self.first_painted.emit()
        QTimer.singleShot(0, self.build_areas)

    @Slot()
    def build_areas(self) -> None:
        """Build the six areas, the menus and shortcuts, and restore the settings (once)."""
        if self._built or self._closing:
            return
        try:
            self._build_areas()
            self._build_actions()
        except BaseException:
            self.tasks.shutdown()  # a QThread destroyed while running aborts the process
            raise
        self._built = True
        if self._restore:
            self._restore_settings()
        else:
            self.tabs.setCurrentIndex(AREAS.index("Train"))
        self.statusBar().showMessage("Studio is ready. Press Train (Ctrl+Return) to train the default model.")
        if self.isVisible():
            QTimer.singleShot(30, self.start_backend)
        self.ready.emit()

    @property
    def is_ready(self) -> bool:
        return self._built

    def _build_areas(self) -> None:
        from studio.ui.areas.data_area import DataArea
        from studio.ui.areas.distill_area import DistillArea
        from studio.ui.areas.evaluate_area import EvaluateArea
        from studio.ui.areas.export_area import ExportArea
        from studio.ui.areas.model_area import ModelArea
        from studio.ui.areas.train_area import TrainArea
        from studio.ui.run_bridge import RunBridge

        self.bridge = RunBridge(self)
        self.data_area = DataArea(self.state, self.tasks)
        self.model_area = ModelArea(self.state, self.tasks)
        self.train_area = TrainArea(self.state, self.bridge, self.backend)
        self.distill_area = DistillArea(self.state, self.tasks, self.bridge, self.backend)
        self.evaluate_area = EvaluateArea(self.state, self.tasks)
        self.export_area = ExportArea(self.state, self.tasks)
        self.areas = {"Data": self.data_area, "Model": self.model_area, "Train": self.train_area,
                      "Distill": self.distill_area, "Evaluate": self.evaluate_area, "Export": self.export_area}
        self.tabs.setUpdatesEnabled(False)
        while self.tabs.count():
            old = self.tabs.widget(0)
            self.tabs.removeTab(0)
            old.deleteLater()
        for i, (name, area) in enumerate(self.areas.items()):
            self.tabs.addTab(area, name)
            self.tabs.setTabToolTip(i, f"{TIPS[name]} (Ctrl+{i + 1})")
        self.tabs.setUpdatesEnabled(True)
        self.train_area.go_to_area.connect(self.show_area)
        self.train_area.dashboard.runs_forgotten.connect(self.release_models)
        self.distill_area.models_replaced.connect(self.release_models)
        self.state.trained_model_changed.connect(self._release_unused)
        # the first window's names, kept for scripts and tests
        ta = self.train_area
        self.train_button, self.pause_button, self.stop_button = ta.train_button, ta.pause_button, ta.stop_button
        self.epochs, self.batch_size, self.lr = ta.epochs, ta.batch_size, ta.lr
        self.progress, self.status = ta.progress, ta.status
        self.loss_chart, self.metric_chart = ta.loss_chart, ta.metric_chart
        self.splitters = {"data": self.data_area.splitter, "model": self.model_area.splitter,
                          "train": self.train_area.splitter, "distill": self.distill_area.splitter,
                          "evaluate": self.evaluate_area.splitter}

    def _action(self, menu, text: str, slot, shortcut: str | QKeySequence | None = None,  # noqa: ANN001
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work whatever has the focus
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_project_action = self._action(file_menu, "&Open project…", self.open_project, "Ctrl+O",
                                                "Open a .studio.json project: data, model and settings")
        self.save_project_action = self._action(file_menu, "&Save project", self.save_project, "Ctrl+S",
                                                "Save the whole set-up to a .studio.json project file")
        self._action(file_menu, "Save project &as…", self.save_project_as, "Ctrl+Shift+S")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        run_menu = bar.addMenu("&Run")
        ta = self.train_area
        self.train_action = self._action(run_menu, "&Train", ta.start_training, "Ctrl+Return",
                                         "Start training with the current settings")
        self.pause_action = self._action(run_menu, "&Pause / resume", ta.toggle_pause, "Ctrl+P")
        self.stop_action = self._action(run_menu, "&Stop", self._stop_any, "Esc",
                                        "Stop after the current step, keeping what was trained")
        self.more_action = self._action(run_menu, "Train &more", ta.train_more, "Ctrl+M")
        self.distill_action = self._action(run_menu, "&Distil", self.distill_area.start_distillation, "Ctrl+D")
        run_menu.addSeparator()
        self.export_action = self._action(run_menu, "&Export ONNX…", self.export_area.export_onnx, "Ctrl+E",
                                          "Export the current model as ONNX, checked against the live model")

        view_menu = bar.addMenu("&View")
        self.area_actions = []
        for i, name in enumerate(AREAS):
            self.area_actions.append(self._action(view_menu, name, lambda _=False, n=name: self.show_area(n),
                                                  f"Ctrl+{i + 1}", f"Show the {name} area"))
        view_menu.addSeparator()
        group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in ("light", "dark"):
            action = self._action(view_menu, f"{name.capitalize()} theme",
                                  lambda _=False, n=name: self.set_theme(n))
            action.setCheckable(True)
            group.addAction(action)
            self.theme_actions[name] = action

        help_menu = bar.addMenu("&Help")
        self.doctor_action = self._action(help_menu, "About this &system…", lambda: doctor_dialog.show_doctor(self),
                                          tip="Versions, devices, display, libraries and folders, for a bug report")

    # -- areas, messages, errors ----------------------------------------------------------------
    @Slot(str)
    def show_area(self, name: str) -> None:
        self.tabs.setCurrentWidget(self.areas[name])

    def is_settled(self) -> bool:
        """No short call queued or running and no debounced inspection waiting (tests, screenshots)."""
        timers = (self.data_area._inspect_timer, self.model_area._timer, self.evaluate_area._pad_timer)
        return not self.tasks.busy and not any(t.isActive() for t in timers)

    def current_area(self) -> str:
        return AREAS[self.tabs.currentIndex()]

    @Slot(list)
    def release_models(self, handles: list) -> None:
        """Free the backend's models of forgotten runs. One still in use (the model the Evaluate and
        Export areas show, or the one Train more would extend) is freed once it no longer is."""
        self._to_release.update(handles)  # the dashboard records only real handles
        self._release_unused()

    @Slot()
    def _release_unused(self) -> None:
        in_use = {getattr(self.state.trained_model, "handle", None), getattr(self.train_area.last_result, "model", None)}
        free = tuple(sorted(self._to_release - in_use))
        if free:
            self._to_release.difference_update(free)
            self.tasks.submit("release", ReleaseRequest(models=free))

    @Slot(dict)
    def show_error(self, error: dict) -> None:
        self.banner.show_error(error)
        self.statusBar().showMessage("Something went wrong; the message is at the top of the window.", 10_000)

    @Slot(str)
    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)

    @Slot(bool, str)
    def _on_running(self, running: bool, operation: str) -> None:
        if running:
            self.banner.dismiss()
            self.last_operation = operation
        self.open_project_action.setEnabled(not running)

    @Slot()
    def _stop_any(self) -> None:
        if self.bridge.running:
            owner = self.bridge.owner
            if owner is self.distill_area:
                self.distill_area.stop()
            else:
                self.train_area.stop_training()

    def _on_catalogue(self, catalogue: Catalogue) -> None:
        freeze_long_lived()  # the backend (torch) is imported by now: its objects need no collection
        self.state.set_catalogue(catalogue)

    def _on_catalogue_error(self, error: dict) -> None:
        self.show_error(error)

    # -- compatibility with the first window ----------------------------------------------------
    def training_request(self) -> TrainRequest:
        return self.train_area.training_request()

    @Slot()
    def start_training(self) -> None:
        self.train_area.start_training()

    @Slot()
    def toggle_pause(self) -> None:
        self.train_area.toggle_pause()

    @Slot()
    def stop_training(self) -> None:
        self._stop_any()

    @property
    def last_result(self) -> object | None:
        return self.train_area.last_result

    @property
    def last_error(self) -> dict | None:
        return self.train_area.last_error

    # -- themes and settings --------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        colours = theme.apply(QApplication.instance(), name)
        self.settings.set_theme(colours.name)
        self.theme_actions[colours.name].setChecked(True)

    def _restore_settings(self) -> None:
        area = self.settings.restore_window(self, self.splitters)
        self.tabs.setCurrentIndex(area if area is not None and 0 <= area < len(AREAS) else AREAS.index("Train"))
        name = self.settings.theme()
        if theme.current().name != name:
            theme.apply(QApplication.instance(), name)
        self.theme_actions.get(name, self.theme_actions["light"]).setChecked(True)
        snapshot = self.settings.last_configuration()
        if snapshot:
            self.state.restore(snapshot)

    def save_settings(self) -> None:
        self.settings.save_window(self, self.splitters, self.tabs.currentIndex())
        self.settings.set_last_configuration(self.state.snapshot())
        self.settings.sync()

    # -- project files (REQ-U13) ----------------------------------------------------------------
    def project(self):  # noqa: ANN201 - a studio.backend.core.project.Project
        from studio.backend.core.project import Project

        s = self.state
        operation = "distill" if self.last_operation == "distill" and s.teacher else "train"
        return Project(operation=operation, data=s.data, model=s.model, config=s.config, runtime=s.runtime,
                       distill=s.distill, teacher=s.teacher or None)

    @Slot()
    def save_project(self) -> None:
        if self.state.project_path:
            self.write_project(self.state.project_path)
        else:
            self.save_project_as()

    @Slot()
    def save_project_as(self) -> None:
        path = dialogs.save_file(self, "projects", "Save the project", PROJECT_FILTER, "project.studio.json")
        if path:
            if not path.endswith(".json"):
                path += ".studio.json"
            self.write_project(path)

    def write_project(self, path: str) -> bool:
        from studio.backend.core.errors import StudioError
        from studio.backend.core.project import save_project

        try:
            written = save_project(path, self.project())
        except StudioError as exc:
            self.show_error(exc.to_dict())
            return False
        self.state.project_path = str(written)
        self.setWindowTitle(f"Studio — {os.path.basename(written)}")
        self._show_message(f"Saved the project to {written}")
        return True

    @Slot()
    def open_project(self) -> None:
        path = dialogs.open_file(self, "projects", "Open a project", PROJECT_FILTER)
        if path:
            self.read_project(path)

    def read_project(self, path: str) -> bool:
        from studio.backend.core.errors import StudioError
        from studio.backend.core.project import load_project

        if self.bridge.running:
            return False
        try:
            project = load_project(path)
        except StudioError as exc:
            self.show_error(exc.to_dict())
            return False
        s = self.state
        s.set_data(project.data)
        s.set_model(project.model)
        s.set_config(project.config)
        s.set_runtime(project.runtime)
        if project.distill is not None:
            s.set_distill(project.distill)
        s.set_teacher(project.teacher or "")
        self.last_operation = project.operation
        s.project_path = path
        self.setWindowTitle(f"Studio — {os.path.basename(path)}")
        self.show_area("Distill" if project.operation == "distill" else "Train")
        self._show_message(f"Opened the project {path}")
        return True

    # -- crash recovery (REQ-U04) ---------------------------------------------------------------
    def offer_recovery(self) -> bool:
        """If a run was interrupted (Studio died mid-run), offer to resume it; True if it resumed."""
        if not self._built or self.bridge is None:
            return False
        found = autosave.find_interrupted()
        if not found or self.bridge.running:
            return False
        latest = found[0]
        request = latest.request
        data = request.data.name if request.data.source == "builtin" else request.data.path
        answer = QMessageBox.question(
            self, "Resume the interrupted run?",
            f"Studio closed while training {request.model.name} on {data}. Its last autosave is kept. "
            "Resume it from there?")
        for other in found[1:]:
            other.discard()
        if answer != QMessageBox.StandardButton.Yes:
            latest.discard()
            return False
        latest.marker.unlink(missing_ok=True)
        self.show_area("Train")
        self.train_area.resume_interrupted(request, str(latest.checkpoint))
        return True

    # -- closing (REQ-U11) ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.bridge is not None and self.bridge.running:
            answer = QMessageBox.question(
                self, "Stop training?",
                "A run is in progress. Stop it and close Studio? What was trained so far is kept.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.train_area.keep_autosave = True  # what was trained is kept: the next start offers to resume
            self.bridge.cancel()
            self.bridge.wait()
            QApplication.processEvents()  # deliver the run's end to the areas
        if not self._closing:
            self._closing = True
            if self._built:
                self.save_settings()
            self.tasks.shutdown()
        event.accept()

    def showEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        super().showEvent(event)
        if self._built and not self._started_backend:
            # after the first paint: the catalogue call imports torch (seconds), the window must not wait
            QTimer.singleShot(30, self.start_backend)

    @Slot()
    def start_backend(self) -> None:
        """Ask the backend for its catalogue and inspect the preset data (done once, after showing)."""
        if self._started_backend or not self._built:
            return
        self._started_backend = True
        if self.state.catalogue is None and not self._closing:
            self.tasks.submit("catalogue", CatalogueRequest(), self._on_catalogue, self._on_catalogue_error,
                              key="catalogue")
            self.data_area.inspect_now()
