"""Render every area of the window after real runs: ``python tools/screenshots.py [OUT_DIR]``.

Runs offscreen (or on a real display when one is set, e.g. under ``xvfb-run``) with temporary
settings, trains the default model on the default data, compares a second run, evaluates,
draws a digit, distils into a tiny student and exports to ONNX, saving one picture per area
into ``docs/screenshots/`` (``data.png``, ``model.png``, ``train.png``, ``evaluate.png``,
``evaluate_draw.png``, ``distill.png``, ``export.png``, ``train_dark.png``).
"""

from __future__ import annotations

import math
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("STUDIO_STATE_DIR", tempfile.mkdtemp(prefix="studio-shots-"))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.backend.core.requests import ModelSpec  # noqa: E402
from studio.ui import theme  # noqa: E402
from studio.ui.main_window import MainWindow  # noqa: E402

SIZE = (1280, 800)


def wait(app: QApplication, done, timeout: float = 600.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    settle = time.monotonic() + 0.4  # let the last frame and late paints land
    while time.monotonic() < settle:
        app.processEvents()
        time.sleep(0.01)


def shoot(app: QApplication, window: MainWindow, area: str, out: pathlib.Path, name: str) -> None:
    window.show_area(area)
    wait(app, window.is_settled)
    path = out / name
    window.grab().save(str(path))
    print(path)


def main(out: pathlib.Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="studio-shots-"))
    app = QApplication.instance() or QApplication(sys.argv)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    theme.apply(app, "light")
    window = MainWindow(restore_settings=False)
    window.resize(*SIZE)
    window.show()
    wait(app, lambda: window.state.catalogue is not None and window.is_settled())
    epochs = int(os.environ.get("STUDIO_SHOT_EPOCHS", "15"))

    shoot(app, window, "Data", out, "data.png")
    shoot(app, window, "Model", out, "model.png")

    window.show_area("Train")
    window.epochs.setValue(epochs)
    window.start_training()
    wait(app, lambda: not window.bridge.running)
    teacher = window.state.trained_model
    window.lr.setValue(0.003)  # a second run to compare with the first
    window.start_training()
    wait(app, lambda: not window.bridge.running)
    shoot(app, window, "Train", out, "train.png")

    evaluate = window.evaluate_area
    window.show_area("Evaluate")
    wait(app, lambda: evaluate.result is not None and window.is_settled())
    import numpy as np

    confusion = np.asarray(evaluate.result.confusion)
    off = np.argwhere((confusion > 0) & ~np.eye(len(confusion), dtype=bool))
    evaluate.open_cell(*(int(v) for v in off[0])) if len(off) else evaluate.open_cell(0, 0)
    evaluate.tabs.setCurrentIndex(1)
    shoot(app, window, "Evaluate", out, "evaluate.png")
    evaluate.tabs.setCurrentIndex(2)
    # a "2": an arc, then the diagonal and the base
    arc = [(0.5 + 0.22 * math.cos(a), 0.32 + 0.17 * math.sin(a)) for a in np.linspace(math.pi * 1.1, math.pi * 2.1, 12)]
    evaluate.pad.draw_stroke([*arc, (0.3, 0.8), (0.75, 0.8)])
    shoot(app, window, "Evaluate", out, "evaluate_draw.png")

    from studio.backend.core.registry import default_registry
    from studio.backend.core.requests import SaveRequest

    teacher_path = work / "teacher.safetensors"
    default_registry().get("pytorch", "save")(SaveRequest(model=teacher.handle, path=str(teacher_path)))
    window.state.set_teacher(str(teacher_path))
    window.state.set_model(ModelSpec(name="mlp", preset="tiny"))
    window.distill_area.baseline.setChecked(True)
    window.show_area("Distill")
    wait(app, window.is_settled)
    window.distill_area.start_distillation()
    wait(app, lambda: not window.bridge.running)
    shoot(app, window, "Distill", out, "distill.png")

    from PySide6.QtWidgets import QFileDialog

    QFileDialog.getSaveFileName = staticmethod(lambda *a, **k: (str(work / "digits-mlp.onnx"), ""))  # type: ignore[method-assign]
    window.state.set_trained_model(teacher)
    window.show_area("Export")
    window.export_area.export("onnx")
    shoot(app, window, "Export", out, "export.png")

    window.set_theme("dark")
    shoot(app, window, "Train", out, "train_dark.png")
    window.set_theme("light")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
