"""The window as a whole: one click trains, errors are readable, closing is clean (REQ-U01, U10, U11)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from ui_helpers import RUN_TIMEOUT_MS, registry_with, wait_run

from studio.backend.core.errors import DataError

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.req("REQ-U01", "REQ-U03")
def test_one_click_on_train_trains_the_default_model_with_live_charts(window, qtbot, tmp_path: pathlib.Path) -> None:
    from studio.ui.main_window import AREAS

    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == list(AREAS) == [
        "Data", "Model", "Train", "Distill", "Evaluate", "Export"]
    assert window.current_area() == "Train" and window.train_button.isEnabled()
    request = window.training_request()
    assert (request.data.source, request.data.name, request.model.name) == ("builtin", "digits", "mlp")
    window.epochs.setValue(3)
    qtbot.mouseClick(window.train_button, Qt.MouseButton.LeftButton)
    assert not window.train_button.isEnabled() and window.stop_button.isEnabled()
    wait_run(window, qtbot)
    result = window.last_result
    assert window.last_error is None, window.last_error
    assert result.status == "finished" and result.epochs_run == 3
    dash = window.train_area.dashboard
    assert dash.count("Loss", "train") == result.steps  # every step reached the chart
    assert dash.count("Loss", "val") == 3 and dash.count("Metric", "val") == 3  # one validation point per epoch
    assert dash.count("Learning rate", "lr") == result.steps and dash.count("Throughput", "rate") == result.steps
    assert result.final_metrics["val_accuracy"] > 0.5  # well above chance (0.1) after 3 epochs
    assert 0 < window.bridge.deliveries < result.steps  # batched, not a signal per step
    assert window.train_button.isEnabled() and not window.stop_button.isEnabled()
    assert window.progress.value() == 100 and "Finished" in window.status.text()
    assert window.state.trained_model is not None and window.state.trained_model.handle == result.model
    window.grab().save(str(tmp_path / "window.png"))
    assert (tmp_path / "window.png").stat().st_size > 10_000


@pytest.mark.req("REQ-U10")
def test_a_backend_error_is_shown_in_the_window_and_a_new_run_can_start(window, qtbot, monkeypatch) -> None:
    from studio.backend.core.requests import DataSpec, TrainRequest

    monkeypatch.setattr(window.train_area, "training_request", lambda: TrainRequest(data=DataSpec(name="no-such-data")))
    window.start_training()
    wait_run(window, qtbot)
    assert window.last_error is not None and window.last_error["code"].startswith(("data.", "request."))
    assert window.banner.isVisible() and "no-such-data" in window.banner.text()
    assert window.train_button.isEnabled()
    monkeypatch.undo()
    window.epochs.setValue(1)
    window.start_training()
    assert not window.banner.isVisible()  # a new run clears the old message
    wait_run(window, qtbot)
    assert window.last_result.status == "finished" and window.last_error is None


@pytest.mark.req("REQ-U10")
def test_an_unexpected_error_shows_a_generic_message_and_its_traceback_goes_to_the_log(make_window, qtbot) -> None:
    from studio.logs import setup_logging

    log_file = setup_logging()

    def broken_train(request, **kwargs):  # noqa: ANN001, ANN202
        raise ValueError("boom-7f3a")

    window = make_window(registry=registry_with(train=broken_train), restore_settings=False)
    window.start_training()
    wait_run(window, qtbot)
    assert window.last_error["code"] == "studio.internal"
    text = window.banner.text()
    assert "Something went wrong inside Studio" in text and "log file" in text
    for handler in __import__("logging").getLogger("studio").handlers:
        handler.flush()
    log_text = log_file.read_text(encoding="utf-8")
    assert "boom-7f3a" in log_text and "Traceback" in log_text and "broken_train" in log_text
    assert window.train_button.isEnabled()  # the window stays usable

    def bad_data(request, **kwargs):  # noqa: ANN001, ANN202
        raise DataError("The file x.csv has no rows; add some.", code="data.empty", hint="Check the file.")

    window.train_area.backend.registry = registry_with(train=bad_data)
    window.start_training()
    wait_run(window, qtbot)
    assert "The file x.csv has no rows; add some." in window.banner.text() and "data.empty" in window.banner.text()


@pytest.mark.req("REQ-U11")
def test_closing_during_a_run_asks_and_declining_keeps_it_running(window, qtbot, monkeypatch) -> None:
    asked = []

    def answer(*args, **kwargs):  # the modal dialog's blocking call is the one thing replaced
        asked.append(args[1])
        return QMessageBox.StandardButton.No if len(asked) == 1 else QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    window.epochs.setValue(500)
    window.start_training()
    qtbot.waitUntil(lambda: window.train_area.dashboard.count("Loss", "train") >= 2, timeout=RUN_TIMEOUT_MS)
    assert not window.close()
    assert window.isVisible() and window.bridge.running
    seen = window.train_area.dashboard.count("Loss", "train")
    qtbot.waitUntil(lambda: window.train_area.dashboard.count("Loss", "train") > seen, timeout=RUN_TIMEOUT_MS)
    assert window.close()
    assert asked == ["Stop training?", "Stop training?"]
    assert not window.bridge.running and window.last_result.status == "cancelled"
    assert window.tasks._thread.isFinished()


CLOSE_SCRIPT = textwrap.dedent("""
    import os, sys, tempfile
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    app = QApplication(sys.argv)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    from studio.ui.main_window import MainWindow
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes)
    w = MainWindow()
    w.epochs.setValue(500)
    w.show()
    def close_when_running():
        if w.train_area.dashboard.count("Loss", "train") >= 3:
            w.close()
            app.quit()
        else:
            QTimer.singleShot(20, close_when_running)
    QTimer.singleShot(0, w.start_training)
    QTimer.singleShot(50, close_when_running)
    QTimer.singleShot(120_000, app.quit)
    app.exec()
    print("status", w.last_result.status if w.last_result else None)
""")


@pytest.mark.req("REQ-U11")
def test_a_process_closed_during_a_run_exits_cleanly_without_qt_warnings(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_STATE_DIR=str(tmp_path),
               STUDIO_LOG_DIR=str(tmp_path / "logs"))
    out = subprocess.run([sys.executable, "-c", CLOSE_SCRIPT], capture_output=True, text=True, timeout=240, env=env,
                         cwd=REPO)
    stderr = "\n".join(line for line in out.stderr.splitlines() if "propagateSizeHints" not in line)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "status cancelled" in out.stdout
    assert stderr.strip() == "", stderr


@pytest.mark.req("REQ-U04")
def test_a_start_queued_while_another_start_paints_leaves_one_run(window, qtbot) -> None:
    from PySide6.QtCore import QTimer

    window.epochs.setValue(1)
    QTimer.singleShot(0, window.start_training)  # runs inside the start below, while it paints
    window.start_training()  # must neither raise "a run is already in progress" nor start twice
    wait_run(window, qtbot)
    assert window.last_error is None and window.last_result.status == "finished"
