"""Render screenshots of the window after a real run: ``python tools/screenshots.py [OUT_DIR]``.

Runs offscreen (or on a real display when one is set, e.g. under ``xvfb-run``), trains the
default model on the default data for a few epochs, and saves ``docs/screenshots/*.png``.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.ui.main_window import MainWindow  # noqa: E402


def main(out: pathlib.Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow()
    window.resize(1200, 720)
    window.show()
    window.epochs.setValue(int(os.environ.get("STUDIO_SHOT_EPOCHS", "15")))
    window.start_training()
    deadline = time.monotonic() + 300
    while window.bridge.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    path = out / "main_window.png"
    window.grab().save(str(path))
    print(path, window.status.text())
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
