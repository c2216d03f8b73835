"""Start the window fast: show it first, then warm the backend up in the background.

``import torch`` and the first optimiser (which imports ``torch._dynamo``) cost about two
seconds here, so they happen on a plain Python thread after the window has painted.
"""

from __future__ import annotations

import logging
import sys
import threading

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from studio.backend.core.registry import default_registry
from studio.logs import setup_logging
from studio.ui.main_window import MainWindow

__all__ = ["run_window", "warm_up_backend"]

log = logging.getLogger(__name__)


def warm_up_backend(backend: str = "pytorch") -> threading.Thread:
    """Load the backend (and its first-use imports) on a daemon thread; errors only logged."""

    def work() -> None:
        try:
            registry = default_registry()
            registry.get(backend, "train")
            warm = getattr(sys.modules.get(f"studio.backend.{backend}.handlers"), "warm_up", None)
            if warm is not None:
                warm()
        except Exception:  # noqa: BLE001 - a failed warm-up shows up again, clearly, on first use
            log.warning("backend warm-up failed", exc_info=True)

    thread = threading.Thread(target=work, name="studio-warmup", daemon=True)
    thread.start()
    return thread


def run_window(argv: list[str] | None = None) -> int:
    setup_logging()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("Studio")
    app.setOrganizationName("Studio")
    window = MainWindow()
    window.show()
    QTimer.singleShot(0, warm_up_backend)
    return app.exec()
