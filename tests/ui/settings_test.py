"""Settings persist between sessions: window layout, last folders, last configuration, theme (REQ-U12)."""

from __future__ import annotations

import pathlib

import pytest
from PySide6.QtWidgets import QApplication, QFileDialog
from ui_helpers import wait_idle

from studio.backend.core.requests import DataSpec


@pytest.mark.req("REQ-U12")
def test_layout_folders_configuration_and_theme_come_back_in_a_new_window(
        make_window, qtbot, monkeypatch, isolated_settings: pathlib.Path, tmp_path: pathlib.Path) -> None:
    first = make_window()
    first.resize(770, 560)  # within the offscreen screen (800 x 600), which restoring clamps to
    first.show_area("Data")
    first.data_area.splitter.setSizes([250, 760])
    first.data_area.select_builtin("iris")
    first.epochs.setValue(7)
    first.lr.setValue(0.01)
    first.set_theme("dark")
    folder = tmp_path / "my data"
    folder.mkdir()
    (folder / "x.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(folder / "x.csv"), ""))
    first.data_area.open_csv()
    wait_idle(first, qtbot)
    first.data_area.select_builtin("iris")
    wait_idle(first, qtbot)
    sizes = first.data_area.splitter.sizes()
    size = (first.width(), first.height())
    assert size != (1240, 780)
    first.close()
    assert list(isolated_settings.rglob("*.ini")), "settings went somewhere else than the temporary folder"

    opened_in = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: opened_in.append(a[2]) or ("", ""))
    second = make_window()
    assert (second.width(), second.height()) == size
    assert second.current_area() == "Data" and second.data_area.splitter.sizes() == sizes
    assert second.state.data == DataSpec(name="iris") and second.epochs.value() == 7 and second.lr.value() == 0.01
    assert second.theme_actions["dark"].isChecked()
    assert QApplication.instance().palette().window().color().name() == "#2a2c30"
    second.data_area.open_csv()
    assert opened_in == [str(folder)]  # the dialog starts in the last folder
