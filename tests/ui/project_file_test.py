"""Project files: the whole set-up saves and opens, and the command line runs it unchanged (REQ-U13)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import wait_idle

from studio.backend.core.project import load_project
from studio.backend.core.requests import DataSpec, ModelSpec

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.req("REQ-U13")
def test_a_saved_project_opens_in_a_new_window_with_identical_controls(
        make_window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    first = make_window()
    first.data_area.select_builtin("iris")
    first.data_area.val_fraction.setValue(25)
    first.model_area.form.widgets["hidden"].setText("16, 8")
    first.epochs.setValue(3)
    first.lr.setValue(0.01)
    first.distill_area.temperature.setValue(2.5)
    wait_idle(first, qtbot)
    path = tmp_path / "iris.studio.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))
    first.save_project_action.trigger()  # Ctrl+S
    assert path.is_file() and first.state.project_path == str(path)
    assert first.windowTitle() == "Studio — iris.studio.json"
    request = first.training_request()
    assert load_project(path).to_request() == request  # the file holds exactly what the window would run

    second = make_window(restore_settings=False)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    second.open_project_action.trigger()  # Ctrl+O
    wait_idle(second, qtbot)
    assert second.training_request() == request
    assert second.state.data == DataSpec(name="iris", val_fraction=0.25)
    assert second.state.model == ModelSpec(name="mlp", hparams={"hidden": [16, 8]})
    assert second.data_area.val_fraction.value() == 25 and second.epochs.value() == 3 and second.lr.value() == 0.01
    assert second.model_area.form.widgets["hidden"].text() == "16, 8"
    assert second.distill_area.temperature.value() == 2.5

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-m", "studio", "train", str(path)], capture_output=True, text=True,
                         timeout=240, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.mark.req("REQ-U13", "REQ-U10")
def test_a_broken_project_file_is_reported_with_its_line(window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bad.studio.json"
    path.write_text('{\n  "config": {\n    "epochz": 3\n  }\n}\n', encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    window.open_project_action.trigger()
    assert window.banner.isVisible() and "line 3" in window.banner.text() and "epochz" in window.banner.text()
    assert window.state.config.epochs == window.epochs.value()  # nothing half-applied
    qtbot.mouseClick(window.banner.close_button, Qt.MouseButton.LeftButton)
    assert not window.banner.isVisible()
