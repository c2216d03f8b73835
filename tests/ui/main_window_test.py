"""The first end-to-end window: one click trains on digits with a live, coalesced loss chart."""

from __future__ import annotations

import pathlib

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

RUN_TIMEOUT_MS = 120_000


@pytest.mark.req("REQ-U01")
def test_one_click_on_train_trains_the_default_model_with_a_live_chart(window, qtbot, tmp_path: pathlib.Path) -> None:
    window.epochs.setValue(3)
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert not window.train_button.isEnabled() and window.stop_button.isEnabled()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)
    result = window.last_result
    assert window.last_error is None, window.last_error
    assert result.status == "finished" and result.epochs_run == 3
    steps = result.steps
    assert window.loss_chart.point_count("train") == steps  # every step reached the chart
    assert window.loss_chart.point_count("val") == 3 and window.metric_chart.point_count("val") == 3
    assert result.final_metrics["val_accuracy"] > 0.5  # well above chance (0.1) after 3 epochs
    assert 0 < window.bridge.deliveries < steps  # batched, not a signal per step
    assert window.train_button.isEnabled() and not window.stop_button.isEnabled()
    assert window.progress.value() == 100
    window.grab().save(str(tmp_path / "window.png"))
    assert (tmp_path / "window.png").stat().st_size > 10_000


@pytest.mark.req("REQ-U01")
def test_stop_ends_the_run_after_the_current_step_and_keeps_the_model(window, qtbot) -> None:
    window.epochs.setValue(500)
    window.start_training()
    qtbot.waitUntil(lambda: window.loss_chart.point_count("train") >= 5, timeout=RUN_TIMEOUT_MS)
    qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)
    assert window.last_result.status == "cancelled"
    assert window.last_result.epochs_run < 500
    assert window.loss_chart.point_count("train") == window.last_result.steps
    assert "Stopped" in window.status.text()


@pytest.mark.req("REQ-U01")
def test_pause_holds_the_run_between_steps_and_resume_continues(window, qtbot) -> None:
    window.epochs.setValue(500)
    window.start_training()
    qtbot.waitUntil(lambda: window.loss_chart.point_count("train") >= 3, timeout=RUN_TIMEOUT_MS)
    window.toggle_pause()
    assert window.pause_button.text() == "Resume"
    qtbot.wait(300)  # let the paused step and its events arrive
    held = window.loss_chart.point_count("train")
    qtbot.wait(500)
    assert window.loss_chart.point_count("train") == held
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.loss_chart.point_count("train") > held, timeout=RUN_TIMEOUT_MS)
    window.stop_training()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)


@pytest.mark.req("REQ-U01")
def test_a_backend_error_is_shown_in_the_window_and_a_new_run_can_start(window, qtbot, monkeypatch) -> None:
    from studio.backend.core.requests import DataSpec, TrainRequest

    monkeypatch.setattr(window, "training_request", lambda: TrainRequest(data=DataSpec(name="no-such-data")))
    window.start_training()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)
    assert window.last_error is not None and window.last_error["code"].startswith(("data.", "request."))
    assert window.error_label.isVisible() and "no-such-data" in window.error_label.text()
    assert window.train_button.isEnabled()
    monkeypatch.undo()
    window.epochs.setValue(1)
    window.start_training()
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)
    assert window.last_result.status == "finished" and not window.error_label.isVisible()


@pytest.mark.req("REQ-U01")
def test_closing_during_a_run_asks_then_stops_the_worker_cleanly(window, qtbot, monkeypatch) -> None:
    asked = []

    def answer(*args, **kwargs):  # the modal dialog's blocking call is the one thing replaced
        asked.append(args[1])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.epochs.setValue(500)
    window.start_training()
    qtbot.waitUntil(lambda: window.loss_chart.point_count("train") >= 2, timeout=RUN_TIMEOUT_MS)
    assert window.close()
    assert asked == ["Stop training?"]
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=RUN_TIMEOUT_MS)
    assert window.last_result.status == "cancelled"
