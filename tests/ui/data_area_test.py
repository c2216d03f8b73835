"""The Data area on real files in temporary folders (REQ-U05, with REQ-U10 for a bad file)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QFileDialog
from ui_helpers import wait_idle

from studio.backend.core.requests import DataSpec, ModelSpec


def _pick_file(monkeypatch: pytest.MonkeyPatch, path: pathlib.Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))


@pytest.mark.req("REQ-U05")
def test_builtin_datasets_are_listed_with_plain_descriptions_and_preview(window, qtbot) -> None:
    area = window.data_area
    window.show_area("Data")
    names = [area.builtin_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(area.builtin_list.count())]
    assert {"digits", "iris", "two_moons"} <= set(names)
    wait_idle(window, qtbot)
    assert area.preview.currentWidget() is area.grid and len(area.grid.captions) == 8  # digits: an image grid
    assert area.balance.values == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    area.select_builtin("iris")
    assert window.state.data == DataSpec(source="builtin", name="iris")
    wait_idle(window, qtbot)
    assert "150 iris flowers" in area.description.text()
    assert area.preview.currentWidget() is area.table and area.table.rowCount() == 20
    assert area.table.horizontalHeaderItem(4).text() == "target"
    assert area.balance.labels == ["setosa", "versicolor", "virginica"] and area.balance.values == [50, 50, 50]
    assert "150 samples" in area.facts.text() and "train 120" in area.facts.text()


@pytest.mark.req("REQ-U05")
def test_opening_a_csv_fills_preview_and_target_and_the_controls_make_the_spec(window, qtbot, monkeypatch,
                                                                              tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["width,height,colour,kind"]
    for i in range(60):
        kind = ("cat", "dog", "bird")[i % 3]
        rows.append(f"{rng.normal():.3f},{rng.normal() + i % 3:.3f},{('red', 'blue')[i % 2]},{kind}")
    csv = tmp_path / "pets.csv"
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    _pick_file(monkeypatch, csv)
    area = window.data_area
    window.show_area("Data")
    qtbot.mouseClick(area.open_csv_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert window.state.data.source == "csv" and window.state.data.path == str(csv)
    assert area.table.rowCount() >= 10 and area.table.item(0, 3).text() == "cat"
    assert [area.target_combo.itemText(i) for i in range(area.target_combo.count())] == [
        "width", "height", "colour", "kind"]
    assert area.target_combo.currentText() == "kind" and area.target_combo.isEnabled()
    assert area.balance.labels == ["bird", "cat", "dog"] and sum(area.balance.values) == 60
    area.target_combo.setCurrentText("colour")
    area.val_fraction.setValue(25)
    area.test_fraction.setValue(10)
    area.seed.setValue(3)
    assert window.state.data == DataSpec(source="csv", name="pets.csv", path=str(csv), target="colour",
                                         val_fraction=0.25, test_fraction=0.10, seed=3)
    wait_idle(window, qtbot)
    assert area.balance.labels == ["blue", "red"] and area.balance.values == [30, 30]
    assert "val 15" in area.facts.text() and "test 6" in area.facts.text()
    assert window.settings.last_folder("data") == str(tmp_path)  # remembered for the next dialog (REQ-U12)


@pytest.mark.req("REQ-U05")
def test_an_image_folder_shows_a_grid_of_its_pictures(window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    root = tmp_path / "shapes"
    for label, colour in (("light", 230), ("dark", 40)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            image = QImage(12, 12, QImage.Format.Format_RGB888)
            image.fill(QColor(colour, colour - i * 10, colour))
            assert image.save(str(root / label / f"{i}.png"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    area = window.data_area
    qtbot.mouseClick(area.open_images_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert window.state.data.source == "images" and window.state.data.path == str(root)
    assert area.preview.currentWidget() is area.grid
    assert sorted(area.grid.captions) == ["dark", "dark", "dark", "light", "light", "light"]
    assert area.balance.values == [3, 3] and not area.target_combo.isEnabled()


@pytest.mark.req("REQ-U05")
def test_a_numpy_file_shows_its_rows(window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "points.npz"
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    np.savez(path, X=x, y=np.arange(20) % 2)
    _pick_file(monkeypatch, path)
    area = window.data_area
    qtbot.mouseClick(area.open_numpy_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert window.state.data.source == "numpy"
    assert area.table.rowCount() == 20 and area.table.item(1, 0).text() == "2"
    assert area.balance.values == [10, 10]


@pytest.mark.req("REQ-U05", "REQ-U10")
def test_a_bad_file_shows_the_backends_message(window, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    csv = tmp_path / "empty.csv"
    csv.write_text("a,b,label\n", encoding="utf-8")
    _pick_file(monkeypatch, csv)
    area = window.data_area
    window.show_area("Data")
    qtbot.mouseClick(area.open_csv_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert area.problem.isVisible() and "empty.csv" in area.problem.text() and "(code: data." in area.problem.text()
    assert window.banner.isVisible() and window.banner.error["code"].startswith("data.")
    assert area.table.rowCount() == 0 and window.state.data_summary is None
    area.select_builtin("iris")  # the area stays usable
    wait_idle(window, qtbot)
    assert not area.problem.isVisible() and area.table.rowCount() == 20


@pytest.mark.req("REQ-U05")
def test_an_image_folder_of_photos_shows_the_size_chosen_for_the_model(window, qtbot, monkeypatch,
                                                                       tmp_path: pathlib.Path) -> None:
    root = tmp_path / "photos"
    for label, colour in (("light", 230), ("dark", 40)):
        (root / label).mkdir(parents=True)
        for i in range(2):
            image = QImage(300, 200, QImage.Format.Format_RGB888)  # photo-sized, not icon-sized
            image.fill(QColor(colour, colour - i * 10, colour))
            assert image.save(str(root / label / f"{i}.png"))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    area = window.data_area
    qtbot.mouseClick(area.open_images_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    assert window.state.model.name == "mlp"
    assert not area.image_size.isHidden() and "64x64" in area.image_size.text() and "mlp" in area.image_size.text()
    window.state.set_model(ModelSpec(name="resnet"))
    qtbot.waitUntil(lambda: "128x128" in area.image_size.text(), timeout=30_000)
    assert "resnet" in area.image_size.text() and "size option" in area.image_size.text()
