"""Shortcuts, plain-word tooltips, light and dark themes, high DPI (REQ-U16)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QLineEdit,
    QListWidget,
    QSpinBox,
    QTabBar,
    QWidget,
)
from ui_helpers import RUN_TIMEOUT_MS, wait_run

REPO = pathlib.Path(__file__).resolve().parents[2]


def _press(qtbot, window, keys: str) -> None:  # noqa: ANN001
    sequence = QKeySequence(keys)
    combo = sequence[0]
    qtbot.keyClick(window.focusWidget() or window, combo.key(), combo.keyboardModifiers())


@pytest.mark.req("REQ-U16")
def test_each_shortcut_triggers_its_action(window, qtbot, monkeypatch) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    for i, name in enumerate(("Data", "Model", "Train", "Distill", "Evaluate", "Export")):
        _press(qtbot, window, f"Ctrl+{i + 1}")
        assert window.current_area() == name
    _press(qtbot, window, "Ctrl+3")
    window.epochs.setValue(500)
    _press(qtbot, window, "Ctrl+Return")
    assert window.bridge.running
    qtbot.waitUntil(lambda: window.train_area.dashboard.count("Loss", "train") >= 2, timeout=RUN_TIMEOUT_MS)
    _press(qtbot, window, "Ctrl+P")
    assert window.bridge.control.paused and window.pause_button.text() == "Resume"
    _press(qtbot, window, "Ctrl+P")
    assert not window.bridge.control.paused
    _press(qtbot, window, "Esc")
    wait_run(window, qtbot)
    assert window.last_result.status == "cancelled"
    dialogs = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: dialogs.append(a[1]) or ("", ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: dialogs.append(a[1]) or ("", ""))
    _press(qtbot, window, "Ctrl+S")
    _press(qtbot, window, "Ctrl+O")
    _press(qtbot, window, "Ctrl+E")
    assert dialogs == ["Save the project", "Open a project", "Export as ONNX"]
    window.train_area.more_epochs.setValue(1)
    epochs = window.last_result.epochs_run
    _press(qtbot, window, "Ctrl+M")
    wait_run(window, qtbot)
    assert window.last_result.epochs_run == epochs + 1


@pytest.mark.req("REQ-U16")
def test_every_control_has_a_plain_words_tooltip(window, qtbot) -> None:
    controls = (QAbstractButton, QSpinBox, QDoubleSpinBox, QComboBox, QLineEdit, QListWidget)
    missing = []
    for widget in window.centralWidget().findChildren(QWidget):
        if not isinstance(widget, controls) or type(widget).__module__.startswith("pyqtgraph"):
            continue
        if isinstance(widget.parent(), (QSpinBox, QDoubleSpinBox, QComboBox, QTabBar)):
            continue  # Qt's own parts: the editor of a spin box or combo box, a tab bar's scroll arrows
        if widget.objectName().startswith("qt_"):
            continue  # a table's corner button
        if not widget.toolTip().strip():
            label = widget.text() if isinstance(widget, (QAbstractButton, QLineEdit)) else ""
            missing.append(f"{type(widget).__name__} {label!r} in {type(widget.window()).__name__}")
    assert not missing, missing
    for action in window.actions():
        assert action.toolTip().strip(), action.text()


@pytest.mark.req("REQ-U16")
def test_switching_theme_changes_the_window_and_the_plots(window, qtbot) -> None:
    app = QApplication.instance()
    light_window = app.palette().window().color().name()
    light_plot = window.loss_chart.backgroundBrush().color().name()
    window.set_theme("dark")
    assert app.palette().window().color().name() == "#2a2c30" != light_window
    assert window.loss_chart.backgroundBrush().color().name() == "#1b1c1f" != light_plot
    assert window.data_area.balance.backgroundBrush().color().name() == "#1b1c1f"
    assert window.settings.theme() == "dark"
    window.set_theme("light")
    assert app.palette().window().color().name() == light_window
    assert window.loss_chart.backgroundBrush().color().name() == light_plot


DPI_SCRIPT = textwrap.dedent("""
    import sys, tempfile
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    from studio.backend.core.registry import HandlerRegistry
    from studio.backend.core.results import Catalogue
    app = QApplication(sys.argv)
    from studio.logs import setup_logging
    setup_logging()  # details go to the log file, as in the application
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    from studio.ui.main_window import MainWindow
    registry = HandlerRegistry(discover_entry_points=False)
    registry.add_backend("pytorch", lambda reg: reg.register("pytorch", "catalogue", lambda r, **k: Catalogue()))
    w = MainWindow(registry=registry, restore_settings=False)
    w.resize(900, 600)
    w.show()
    for _ in range(20):
        app.processEvents()
    image = w.grab().toImage()
    print("ratio", w.devicePixelRatioF(), image.width(), image.height(), w.width(), w.height())
    w.close()
""")


@pytest.mark.req("REQ-U16")
def test_at_twice_the_scale_the_window_renders_sharp_and_without_warnings(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR="2", STUDIO_STATE_DIR=str(tmp_path),
               STUDIO_LOG_DIR=str(tmp_path / "logs"))
    out = subprocess.run([sys.executable, "-c", DPI_SCRIPT], capture_output=True, text=True, timeout=120, env=env,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    ratio, image_w, image_h, w, h = out.stdout.split()[1:6]
    assert float(ratio) == 2.0 and (int(image_w), int(image_h)) == (2 * int(w), 2 * int(h))
    stderr = [line for line in out.stderr.splitlines() if "propagateSizeHints" not in line and line.strip()]
    assert not stderr, stderr
