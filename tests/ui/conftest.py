from __future__ import annotations

import pytest


@pytest.fixture
def window(qtbot):
    from studio.ui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    if win.bridge.running:
        win.bridge.cancel()
        qtbot.waitUntil(lambda: not win.bridge.running, timeout=60_000)
