"""The Export area: save, load, ONNX and TorchScript through file dialogs, each checked (REQ-U08)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from ui_helpers import wait_idle, wait_run

from studio.backend.core.formatting import format_bytes


def _save_to(monkeypatch: pytest.MonkeyPatch, path: pathlib.Path) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), ""))


@pytest.fixture
def trained(window, qtbot):  # noqa: ANN001, ANN201
    window.epochs.setValue(1)
    window.start_training()
    wait_run(window, qtbot)
    window.show_area("Export")
    return window


@pytest.mark.req("REQ-U08")
def test_onnx_and_torchscript_exports_show_path_size_difference_and_a_working_snippet(
        trained, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    area = trained.export_area
    snippets = {}
    for fmt, button, name in (("onnx", area.onnx_button, "digits.onnx"),
                              ("torchscript", area.torchscript_button, "digits.pt")):
        target = tmp_path / name
        _save_to(monkeypatch, target)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        wait_idle(trained, qtbot)
        assert area.last is not None and area.last.format == fmt, area.busy_label.text()
        assert target.is_file() and area.path_label.text() == str(target)
        size = target.stat().st_size
        assert area.size_label.text() == f"{format_bytes(size)} ({size:,} bytes)"
        shown = float(re.search(r"model: ([0-9.e+-]+)", area.diff_label.text()).group(1))
        assert shown <= 1e-4 and area.last.max_abs_diff <= 1e-4
        snippets[fmt] = area.snippet.toPlainText()
        assert str(target) in snippets[fmt]
    # each snippet as shown loads its file, feeds it inputs of the right shape and prints the classes
    for fmt, snippet in snippets.items():
        out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=180,
                             env=dict(os.environ, PYTHONWARNINGS="ignore"))
        assert out.returncode == 0, out.stderr[-2000:]
        shown = eval(out.stdout.strip().splitlines()[-1])  # noqa: S307 - a printed list of class names
        assert len(shown) == 2 and set(shown) <= {str(d) for d in range(10)}, (fmt, out.stdout)
    assert area.last.metadata["preprocessing_in_graph"] is True  # raw values in, by default


@pytest.mark.req("REQ-U08")
def test_the_export_options_give_the_bare_network_or_probabilities(trained, qtbot, monkeypatch, tmp_path) -> None:
    area = trained.export_area
    assert area.raw_inputs.isChecked() and not area.softmax.isChecked()
    area.raw_inputs.setChecked(False)
    _save_to(monkeypatch, tmp_path / "bare.onnx")
    qtbot.mouseClick(area.onnx_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    assert area.last.metadata["preprocessing_in_graph"] is False
    assert "normalised" in area.details.text()
    area.raw_inputs.setChecked(True)
    area.softmax.setChecked(True)
    _save_to(monkeypatch, tmp_path / "probs.onnx")
    qtbot.mouseClick(area.onnx_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    assert area.last.metadata["output"]["values"].startswith("probabilities")
    assert "raw" in area.details.text()
    assert not area.pixel_range.isHidden()  # digits are images: the pixel range is offered
    area.pixel_range.setCurrentIndex(area.pixel_range.findData("0..255"))
    _save_to(monkeypatch, tmp_path / "bytes.onnx")
    qtbot.mouseClick(area.onnx_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    assert area.last.metadata["pixel_range"] == "0..255" and "0..255" in area.details.text()


@pytest.mark.req("REQ-U08")
def test_a_saved_checkpoint_loads_back_with_its_metadata_as_the_current_model(
        trained, qtbot, monkeypatch, tmp_path: pathlib.Path) -> None:
    area = trained.export_area
    first = trained.state.trained_model
    target = tmp_path / "kept.safetensors"
    _save_to(monkeypatch, target)
    area.training_state.setChecked(True)
    qtbot.mouseClick(area.save_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    assert target.is_file() and area.path_label.text() == str(target)
    assert "with training state" in area.details.text()
    assert f"{target.stat().st_size:,} bytes" in area.size_label.text()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(area.load_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    loaded = trained.state.trained_model
    assert loaded.source == "load" and loaded.handle != first.handle
    assert loaded.model.name == "mlp" and loaded.data.name == "digits" and len(loaded.class_names) == 10
    details = area.details.text()
    assert "Model: mlp" in details and "classification — 10 classes" in details and "val accuracy" in details
    assert "kept.safetensors (loaded)" in area.model_label.text()
    assert str(target.resolve()) in area.snippet.toPlainText()
    qtbot.waitUntil(lambda: trained.evaluate_area.result is not None, timeout=60_000)
    wait_idle(trained, qtbot)  # the loaded model evaluates like the trained one
    assert trained.evaluate_area.result.metrics["accuracy"] == pytest.approx(first.metrics["val_accuracy"], abs=1e-6)


@pytest.mark.req("REQ-U08", "REQ-U10")
def test_an_export_to_an_unwritable_place_shows_a_readable_message(trained, qtbot, monkeypatch,
                                                                   tmp_path: pathlib.Path) -> None:
    _save_to(monkeypatch, tmp_path / "no-such-folder" / "x.onnx")
    qtbot.mouseClick(trained.export_area.onnx_button, Qt.MouseButton.LeftButton)
    wait_idle(trained, qtbot)
    assert trained.banner.isVisible() and "no-such-folder" in trained.banner.text()
