"""Fixtures of the reliability suite: the real backend on one CPU thread, a small trained model, windows.

The window fixtures mirror ``tests/ui/conftest.py`` (each window gets its own INI settings folder
and autosave folder) but are not autouse, so the backend-only modules never create a
``QApplication``.
"""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Callable, Iterator

import pytest
import torch
from reliability_helpers import QUICK, RUN_TIMEOUT_MS

from studio.backend.core.requests import TrainRequest

UNIT_TESTS = pathlib.Path(__file__).resolve().parent.parent / "unit"
if str(UNIT_TESTS) not in sys.path:  # reuse the serialisation tests' helpers (temps, expect_error, ...)
    sys.path.append(str(UNIT_TESTS))


@pytest.fixture(scope="module")
def registry():
    from studio.backend.core.registry import default_registry

    return default_registry()


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every reliability test runs torch on one thread (``one_torch_thread`` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def trained(registry):
    """A digits MLP trained for one epoch (the handle is in the backend's model store)."""
    torch.set_num_threads(1)
    return registry.call("pytorch", "train", TrainRequest(config=QUICK))


# -- windows ---------------------------------------------------------------------------------------


@pytest.fixture
def isolated_settings(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, qapp) -> Iterator[pathlib.Path]:  # noqa: ANN001
    from PySide6.QtCore import QSettings

    folder = tmp_path / "settings"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("STUDIO_STATE_DIR", str(tmp_path / "state"))
    yield folder


@pytest.fixture
def make_window(qtbot, isolated_settings) -> Iterator[Callable[..., object]]:  # noqa: ANN001
    """Build windows on the real backend, shown, with the catalogue loaded; all closed at the end."""
    made = []

    def make(**kwargs: object):  # noqa: ANN202
        from studio.ui.main_window import MainWindow

        win = MainWindow(restore_settings=False, **kwargs)
        # pytest-qt closes added widgets before fixtures finalise: stop a run a failed test left going
        # first, or the window's "Stop training?" question would wait for ever
        qtbot.addWidget(win, before_close_func=_stop_run)
        win.show()
        qtbot.waitExposed(win)
        qtbot.waitUntil(lambda: win.state.catalogue is not None, timeout=RUN_TIMEOUT_MS)
        made.append(win)
        return win

    def _stop_run(win) -> None:  # noqa: ANN001
        if win.bridge.running:
            win.bridge.cancel()
            qtbot.waitUntil(lambda: not win.bridge.running, timeout=RUN_TIMEOUT_MS)

    yield make
    for win in made:
        _stop_run(win)
        win.close()
