"""Start the window fast: show it first, then warm the backend up in the background.

``import torch`` and the first optimiser (which imports ``torch._dynamo``) cost about two
seconds here, so they happen on a plain Python thread after the window has painted. Uncaught
exceptions and Qt's own warnings go to the rotating log file (REQ-U10); an uncaught exception
in a slot is also shown in the window instead of vanishing.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

from PySide6.QtCore import Qt, QTimer, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMainWindow

from studio.backend.core.registry import default_registry
from studio.logs import setup_logging
from studio.ui.tasks import Backend

__all__ = ["create_window", "run_window", "warm_up_backend", "install_error_logging"]

log = logging.getLogger(__name__)


def warm_up_backend(backend: str = "pytorch") -> threading.Thread:
    """Load the backend (and its first-use imports) on a daemon thread; errors only logged."""

    def work() -> None:
        try:
            Backend(default_registry(), backend).ensure_ready()  # the one warm-up every worker waits for
        except Exception:  # noqa: BLE001 - a failed warm-up shows up again, clearly, on first use
            log.warning("backend warm-up failed", exc_info=True)

    thread = threading.Thread(target=work, name="studio-warmup", daemon=True)
    thread.start()
    return thread


_QT_LEVELS = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}


def install_error_logging(window: object | None = None) -> None:
    """Log uncaught exceptions and Qt messages; show uncaught exceptions in ``window`` when given."""
    qt_log = logging.getLogger("studio.qt")

    def qt_handler(kind: QtMsgType, context: object, message: str) -> None:
        qt_log.log(_QT_LEVELS.get(kind, logging.WARNING), "%s", message)

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        logging.getLogger("studio").error("uncaught exception", exc_info=(kind, exc, tb))
        show = getattr(window, "show_error", None)
        if show is not None:
            try:
                show({"code": "studio.internal", "message": f"Something went wrong inside Studio: {exc}. "
                      "Details are in the log file.", "hint": None})
            except Exception:  # noqa: BLE001 - never fail inside the hook
                pass

    qInstallMessageHandler(qt_handler)
    sys.excepthook = excepthook


def create_window(argv: list[str] | None = None) -> tuple[QApplication, QMainWindow]:
    """The application and its shown main window, as ``studio`` starts them (also used by benchmarks)."""
    setup_logging()
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    from studio.ui import theme
    from studio.ui.main_window import MainWindow
    from studio.ui.settings import Settings

    theme.apply(app, Settings().theme())
    window = MainWindow(lazy=True)  # paints a light shell first; the areas (pyqtgraph) follow at once
    # the backend's imports (torch, seconds) start as soon as the shell is on screen, while the areas
    # are built, so a click on Train waits as little as possible
    window.first_painted.connect(warm_up_backend)
    install_error_logging(window)
    window.show()
    return app, window


def run_window(argv: list[str] | None = None) -> int:
    app, window = create_window(argv)

    def when_ready() -> None:
        QTimer.singleShot(300, window.offer_recovery)  # type: ignore[attr-defined]

    window.ready.connect(when_ready)  # type: ignore[attr-defined]
    return app.exec()
