"""The Evaluate area after a real run: confusion cells open their samples, mistakes, drawing pad (REQ-U09)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import RUN_TIMEOUT_MS, wait_idle, wait_run

from studio.backend.core.registry import default_registry
from studio.backend.core.requests import PredictRequest


@pytest.fixture
def evaluated(window, qtbot):  # noqa: ANN001, ANN201
    window.epochs.setValue(3)
    window.start_training()
    wait_run(window, qtbot)
    window.show_area("Evaluate")
    qtbot.waitUntil(lambda: window.evaluate_area.result is not None, timeout=RUN_TIMEOUT_MS)
    wait_idle(window, qtbot)
    return window


@pytest.mark.req("REQ-U09")
def test_confusion_cells_open_exactly_the_samples_they_count(evaluated, qtbot) -> None:
    area = evaluated.evaluate_area
    result = area.result
    assert result.split == "val" and result.num_samples == 359
    assert area.heatmap.matrix.tolist() == [list(r) for r in result.confusion]
    assert area.per_class.rowCount() == 10 and area.per_class.item(3, 0).text() == "3"
    confusion = np.asarray(result.confusion)
    off = np.argwhere((confusion > 0) & ~np.eye(10, dtype=bool))
    true, predicted = (int(v) for v in off[0]) if len(off) else (0, 0)
    qtbot.mouseClick(area.heatmap.viewport(), Qt.MouseButton.LeftButton,
                     pos=area.heatmap.viewport().mapFrom(area.heatmap, area.heatmap.cell_position(true, predicted)))
    assert area.cell == (true, predicted)
    expected = [i for i, t, p in zip(result.sample_indices, result.targets, result.predicted)
                if t == true and p == predicted]
    assert area.cell_indices == expected and len(expected) == confusion[true, predicted]
    wait_idle(evaluated, qtbot)
    assert len(area.cell_samples.grid.captions) == len(expected)
    assert area.cell_samples.grid.captions[0].startswith(f"#{expected[0]} ")
    area.open_cell(4, 4)  # a diagonal cell: the ones it got right
    wait_idle(evaluated, qtbot)
    assert len(area.cell_samples.grid.captions) == confusion[4, 4] and "right" in area.cell_label.text()


@pytest.mark.req("REQ-U09")
def test_the_most_confident_mistakes_come_first_with_their_pictures(evaluated, qtbot) -> None:
    area = evaluated.evaluate_area
    result = area.result
    wrong = sum(t != p for t, p in zip(result.targets, result.predicted))
    assert wrong == result.num_samples - int(np.trace(np.asarray(result.confusion)))
    assert len(area.mistake_indices) == min(24, wrong)
    assert area.mistake_confidences == sorted(area.mistake_confidences, reverse=True)
    assert area.mistake_confidences[0] == max(c for t, p, c in zip(result.targets, result.predicted,
                                                                   result.confidence) if t != p)
    assert len(area.mistakes.grid.captions) == len(area.mistake_indices)
    assert "→" in area.mistakes.grid.captions[0]


@pytest.mark.req("REQ-U09")
def test_drawing_a_digit_updates_the_prediction_live(evaluated, qtbot) -> None:
    area = evaluated.evaluate_area
    area.tabs.setCurrentIndex(2)
    assert area.pad_box.isVisible()
    pad = area.pad
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(112, 30))
    for y in range(40, 200, 20):  # a vertical stroke, as a mouse draws it
        qtbot.mouseMove(pad, QPoint(112, y))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(112, 195))
    digit = pad.digit()
    assert digit.shape == (8, 8) and digit.max() >= 0.5 and digit[:, 3:5].sum() > digit[:, [0, 7]].sum()
    qtbot.waitUntil(lambda: area.prediction is not None, timeout=RUN_TIMEOUT_MS)
    wait_idle(evaluated, qtbot)
    backend = default_registry().get("pytorch", "predict")(
        PredictRequest(model=evaluated.state.trained_model.handle, inputs=[[digit.tolist()]]))
    assert area.prediction.labels == backend.labels
    assert area.pad_answer.text().startswith(f"It looks like a {backend.labels[0]}")
    assert area.pad_probs.values == pytest.approx(list(backend.probabilities[0]))
    first = area.prediction
    pad.draw_stroke([(0.2, 0.5), (0.8, 0.5)])  # a cross bar: the picture, and the prediction, change
    qtbot.waitUntil(lambda: area.prediction is not first, timeout=RUN_TIMEOUT_MS)
    assert area.prediction.probabilities != first.probabilities
    qtbot.mouseClick(area.clear_pad_button, Qt.MouseButton.LeftButton)
    wait_idle(evaluated, qtbot)
    assert pad.is_empty() and area.pad_answer.text() == "Draw a digit"


@pytest.mark.req("REQ-U09")
def test_predict_from_a_file_lists_a_prediction_per_example(evaluated, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    area = evaluated.evaluate_area
    path = tmp_path / "two.npy"
    np.save(path, np.zeros((2, 1, 8, 8), dtype=np.float32))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    qtbot.mouseClick(area.predict_file_button, Qt.MouseButton.LeftButton)
    wait_idle(evaluated, qtbot)
    assert area.predictions.rowCount() == 2 and area.predictions.item(0, 1).text() in [str(i) for i in range(10)]
    assert "%" in area.predictions.item(0, 2).text()
