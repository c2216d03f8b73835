"""Fixtures of the window tests: temporary settings and state folders, a window on the real backend.

Every test gets its own INI settings folder (``QSettings.setPath``) and autosave folder
(``STUDIO_STATE_DIR``), so nothing leaks between tests or into the user's real settings.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import QSettings
from ui_helpers import RUN_TIMEOUT_MS, close_window


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, qapp) -> Iterator[pathlib.Path]:  # noqa: ANN001
    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("STUDIO_STATE_DIR", str(tmp_path / "state"))
    yield folder
    from studio.ui import theme

    if theme.current().name != "light":
        theme.apply(qapp, "light")


@pytest.fixture
def make_window(qtbot) -> Iterator[Callable[..., object]]:  # noqa: ANN001
    """Build windows on the real backend, shown, with the catalogue loaded; all closed at the end."""
    made = []

    def make(**kwargs: object):  # noqa: ANN202
        from studio.ui.main_window import MainWindow

        win = MainWindow(**kwargs)
        # pytest-qt closes added widgets before fixtures finalise: a run left going by a failed test
        # is stopped first, or the window's "Stop training?" question would wait for ever
        qtbot.addWidget(win, before_close_func=lambda w: close_window(w, qtbot))
        win.show()
        qtbot.waitExposed(win)
        qtbot.waitUntil(lambda: win.state.catalogue is not None, timeout=RUN_TIMEOUT_MS)
        made.append(win)
        return win

    yield make
    for win in made:
        close_window(win, qtbot)


@pytest.fixture
def window(make_window):  # noqa: ANN001, ANN201
    return make_window()
