"""The window under faults: closing mid-run and mid-save, and errors inside the worker (REQ-U10, REQ-U11, REQ-U04, REQ-S04).

Real windows on the real backend (``QT_QPA_PLATFORM=offscreen``); pytest-qt fails a test on any Qt
warning (``qt_log_level_fail = "WARNING"``), so "QThread: Destroyed while thread is still running" and
the like cannot pass unnoticed. Closing while a run trains, while its autosave is being written, and
while the Export area writes a checkpoint: the worker finishes, nothing is half-written, and the last
checkpoint loads (after closing mid-run, the next start offers to resume from it). An exception raised
inside the worker by the data, the model, a callback (the autosave) or user code calling ``sys.exit``
reaches the window as a readable message, and the window stays usable: a new run starts and finishes.
"""

from __future__ import annotations

import pathlib
import threading
import time

import pytest
import torch
from PySide6.QtWidgets import QFileDialog, QMessageBox
from pytorch_serialization_unit_test import temps
from reliability_helpers import RUN_TIMEOUT_MS, os_thread_names

from studio.backend.core.requests import LoadRequest
from studio.backend.pytorch import data as data_lib
from studio.backend.pytorch import model_files
from studio.backend.pytorch import models as model_lib
from studio.backend.pytorch.serialization import container


def wait_run(win, qtbot) -> None:  # noqa: ANN001
    qtbot.waitUntil(lambda: not win.bridge.running, timeout=RUN_TIMEOUT_MS)


def answer_yes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    def question(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the modal dialog is the one thing replaced
        asked.append(args[1])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def slow_writes_off_the_gui_thread(monkeypatch: pytest.MonkeyPatch, seconds: float) -> threading.Event:
    """Checkpoint writes from a worker thread pause ``seconds`` after their header; the event says one began."""
    entered = threading.Event()
    real = container._write_all

    def write_all(f, data) -> None:  # noqa: ANN001
        real(f, data)
        if threading.current_thread() is not threading.main_thread() and not entered.is_set():
            entered.set()
            time.sleep(seconds)

    monkeypatch.setattr(container, "_write_all", write_all)
    return entered


def autosaves(tmp_path: pathlib.Path) -> list[pathlib.Path]:
    folder = tmp_path / "state" / "autosave"  # STUDIO_STATE_DIR of the isolated_settings fixture
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


def loads(registry, path: pathlib.Path) -> None:  # noqa: ANN001
    result = registry.call("pytorch", "load", LoadRequest(path=str(path)))
    assert result.size_bytes == path.stat().st_size and result.metadata["task"] == "classification"


# -- closing (REQ-U11) -------------------------------------------------------------------------------


@pytest.mark.req("REQ-U11", "REQ-U04", "REQ-S04")
def test_closing_mid_run_stops_the_worker_keeps_the_autosave_and_the_next_start_resumes_it(
        make_window, qtbot, monkeypatch: pytest.MonkeyPatch, registry, tmp_path: pathlib.Path) -> None:
    asked = answer_yes(monkeypatch)
    win = make_window()
    win.epochs.setValue(60)
    win.batch_size.setValue(256)
    win.start_training()
    qtbot.waitUntil(lambda: len(autosaves(tmp_path)) == 1, timeout=RUN_TIMEOUT_MS)  # an epoch is autosaved
    win.toggle_pause()  # closing a paused run: the cancel must wake it
    assert win.bridge.running and win.bridge.control.paused
    assert win.close()
    assert asked == ["Stop training?"]
    assert not win.bridge.running and win.last_result.status == "cancelled"
    assert "studio-run" not in os_thread_names() and win.tasks._thread.isFinished()  # both workers ended
    (checkpoint,) = autosaves(tmp_path)
    assert temps(checkpoint.parent) == []
    loads(registry, checkpoint)

    again = make_window()
    assert again.offer_recovery()  # "Studio closed while training ...; resume it from there?" -- yes
    wait_run(again, qtbot)
    result = again.last_result
    assert again.last_error is None and result.status == "finished" and result.epochs_run == 60
    assert autosaves(tmp_path) == []  # a clean end removes the autosave


@pytest.mark.req("REQ-U11", "REQ-S04")
def test_closing_while_the_autosave_is_written_lets_the_worker_finish_the_file(
        make_window, qtbot, monkeypatch: pytest.MonkeyPatch, registry, tmp_path: pathlib.Path) -> None:
    answer_yes(monkeypatch)
    entered = slow_writes_off_the_gui_thread(monkeypatch, 0.5)
    win = make_window()
    win.epochs.setValue(50)
    win.batch_size.setValue(256)
    win.start_training()
    qtbot.waitUntil(entered.is_set, timeout=RUN_TIMEOUT_MS)  # the worker is inside the autosave's write
    assert win.close()
    assert not win.bridge.running and win.last_result.status == "cancelled"
    assert "studio-run" not in os_thread_names()
    (checkpoint,) = autosaves(tmp_path)
    assert temps(checkpoint.parent) == []
    monkeypatch.undo()
    loads(registry, checkpoint)


@pytest.mark.req("REQ-U11", "REQ-S04", "REQ-H15")
def test_closing_while_the_export_area_saves_lets_the_save_finish(
        make_window, qtbot, monkeypatch: pytest.MonkeyPatch, registry, tmp_path: pathlib.Path) -> None:
    win = make_window()
    win.epochs.setValue(1)
    win.start_training()
    wait_run(win, qtbot)
    target = tmp_path / "exported.safetensors"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    entered = slow_writes_off_the_gui_thread(monkeypatch, 0.5)
    win.export_area.training_state.setChecked(True)
    win.export_area.save_checkpoint()
    qtbot.waitUntil(entered.is_set, timeout=RUN_TIMEOUT_MS)  # the tasks' worker is inside the write
    assert win.close()  # no run: no question; the call in progress ends before the thread stops
    assert win.tasks._thread.isFinished()
    assert target.is_file() and temps(tmp_path) == []
    monkeypatch.undo()
    loads(registry, target)


# -- errors in the worker (REQ-U10) ------------------------------------------------------------------


def _failing_forward(monkeypatch: pytest.MonkeyPatch, error: BaseException, after: int = 2) -> None:
    real = model_lib.build_model
    calls = [0]

    def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        module = real(*args, **kwargs)
        forward = module.forward

        def guarded(x):  # noqa: ANN001, ANN202
            if module.training and x.device.type != "meta":
                calls[0] += 1
                if calls[0] > after:
                    raise error
            return forward(x)

        module.forward = guarded
        return module

    monkeypatch.setattr(model_lib, "build_model", build)


def _fault(source: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Inject a fault; returns the expected code and a piece of the message the window must show."""
    if source == "data":
        def unreadable(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            raise ValueError("the data file changed while it was read")

        monkeypatch.setattr(data_lib, "load_data", unreadable)
        return "train.failed", "the data file changed while it was read"
    if source == "model":
        _failing_forward(monkeypatch, ZeroDivisionError("a layer divided by zero"))
        return "train.failed", "Training failed at step 3: ZeroDivisionError: a layer divided by zero"
    if source == "callback":
        def refuse(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            raise PermissionError(13, "Permission denied", path)

        monkeypatch.setattr(model_files, "save_trained", refuse)
        return "train.callback_failed", "The callback EpochCheckpoint.on_epoch failed"
    _failing_forward(monkeypatch, SystemExit(3))  # user code (a model plugin) calling sys.exit
    return "studio.internal", "Something went wrong inside Studio"


@pytest.mark.req("REQ-U10", "REQ-H11", "REQ-T14")
@pytest.mark.parametrize("source", ["data", "model", "callback", "user code calling sys.exit"])
def test_an_exception_inside_the_worker_reaches_the_window_readably_and_a_new_run_starts(
        make_window, qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path, source: str) -> None:
    win = make_window()
    win.tasks.wait_idle()  # the Data area's first inspection has run; the fault is for the run only
    win.epochs.setValue(2)
    win.batch_size.setValue(256)
    code, text = _fault(source, monkeypatch)
    win.start_training()
    wait_run(win, qtbot)
    error = win.last_error
    assert error is not None and error["code"] == code, error
    assert win.banner.isVisible() and text in win.banner.text() and code in win.banner.text()
    assert "Traceback" not in win.banner.text()  # readable: a sentence, not a stack
    assert win.train_button.isEnabled() and not win.stop_button.isEnabled() and win.state.running == ""
    assert autosaves(tmp_path) == []  # the failed run's autosave and marker are cleaned up
    monkeypatch.undo()
    torch.set_num_threads(1)
    win.tasks.wait_idle()  # the short calls the fault also failed (the Data area's summary) have reported
    win.start_training()
    assert not win.banner.isVisible()
    wait_run(win, qtbot)
    assert win.last_error is None and win.last_result.status == "finished" and win.last_result.epochs_run == 2
