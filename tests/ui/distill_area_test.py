"""The Distill area: a saved teacher's metadata, the request from the controls, the comparison (REQ-U07)."""

from __future__ import annotations

import pathlib

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import wait_idle, wait_run

from studio.backend.core.registry import default_registry
from studio.backend.core.requests import (
    DataSpec,
    DistillConfig,
    DistillRequest,
    ModelSpec,
    SaveRequest,
    TrainConfig,
    TrainRequest,
)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    backend = default_registry()
    trained = backend.get("pytorch", "train")(TrainRequest(config=TrainConfig(epochs=3)))
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    backend.get("pytorch", "save")(SaveRequest(model=trained.model, path=str(path)))
    return path


@pytest.mark.req("REQ-U07")
def test_a_teacher_from_the_dialog_shows_its_metadata_and_the_controls_make_the_request(
        window, qtbot, monkeypatch, teacher: pathlib.Path) -> None:
    area = window.distill_area
    window.show_area("Distill")
    assert not area.distill_button.isEnabled()  # nothing to distil without a teacher
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(teacher), ""))
    qtbot.mouseClick(area.teacher_button, Qt.MouseButton.LeftButton)
    wait_idle(window, qtbot)
    info = area.teacher_info.text()
    assert "Model: mlp" in info and "classification — 10 classes" in info and "val accuracy" in info
    assert "File size:" in info and area.distill_button.isEnabled()
    area.preset_combo.setCurrentIndex(area.preset_combo.findData("tiny"))
    area.method.setCurrentIndex(area.method.findData("dkd"))
    area.temperature.setValue(3.0)
    area.hard_weight.setValue(0.5)
    area.soft_weight.setValue(2.0)
    area.baseline.setChecked(True)
    window.epochs.setValue(2)
    expected = DistillRequest(
        teacher=str(teacher), student=ModelSpec(name="mlp", preset="tiny"), data=DataSpec(name="digits"),
        config=window.state.config,
        distill=DistillConfig(method="dkd", temperature=3.0, hard_weight=0.5, soft_weight=2.0, baseline=True))
    assert window.state.distill_request() == expected
    assert window.model_area.preset_combo.currentData() == "tiny"  # the student is the Model area's model


def _ready_to_distil(window, qtbot, teacher: pathlib.Path, epochs: int):  # noqa: ANN001, ANN202
    """The Distill area shown, with the teacher, a tiny MLP student, ``epochs`` and the baseline asked for."""
    area = window.distill_area
    window.show_area("Distill")
    window.state.set_teacher(str(teacher))
    window.state.set_model(ModelSpec(name="mlp", preset="tiny"))
    window.state.update_config(epochs=epochs)
    area.baseline.setChecked(True)
    wait_idle(window, qtbot)
    return area


@pytest.mark.req("REQ-U07")
def test_a_completed_distillation_fills_the_table_and_chart_side_by_side(window, qtbot, teacher: pathlib.Path) -> None:
    area = _ready_to_distil(window, qtbot, teacher, epochs=2)
    qtbot.mouseClick(area.distill_button, Qt.MouseButton.LeftButton)
    assert not area.distill_button.isEnabled() and not window.train_button.isEnabled()
    legend = list(area.loss_chart.legend.items)
    assert area.loss_chart.legend_labels() == ["training", "validation"]  # set before the student's first step
    wait_run(window, qtbot)
    assert area.last_error is None, area.last_error
    assert area.loss_chart.legend.items == legend  # and never laid out again while it trained
    rows = area.last_result.comparison
    assert [r["role"] for r in rows] == ["teacher", "student", "baseline"]
    assert [area.table.item(i, 0).text() for i in range(3)] == ["Teacher", "Student", "Baseline"]
    assert area.table.item(1, 1).text() == f"{rows[1]['accuracy']:.1%}"
    assert area.compare_chart.labels == ["Teacher", "Student", "Baseline"]
    assert area.compare_chart.values == pytest.approx([r["accuracy"] for r in rows])
    assert area.gap_label.text() and area.loss_chart.point_count("train") == area.last_result.train.steps
    assert window.state.trained_model.source == "distill" and window.train_button.isEnabled()


@pytest.mark.req("REQ-U07", "REQ-U15")
def test_a_newer_distillation_frees_the_models_of_the_one_it_replaced(window, qtbot, teacher: pathlib.Path) -> None:
    from studio.backend.pytorch.model_store import store

    area = _ready_to_distil(window, qtbot, teacher, epochs=1)
    held = []
    for _ in range(2):
        area.start_distillation()
        wait_run(window, qtbot)
        assert area.last_error is None, area.last_error
        held.append((area.last_result.train.model, area.last_result.baseline.model))
        wait_idle(window, qtbot)  # the release is a short call of its own
    (first_student, first_baseline), (student, baseline) = held
    assert first_student not in store and first_baseline not in store  # a long session keeps only the latest
    assert student in store and baseline in store and window.state.trained_model.handle == student
