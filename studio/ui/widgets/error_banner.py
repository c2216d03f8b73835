"""The readable error message at the top of the window (REQ-U10)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from studio.logs import log_dir
from studio.ui import theme
from studio.ui.errors import error_text

__all__ = ["ErrorBanner"]


class ErrorBanner(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Hide this message")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.error: dict[str, Any] | None = None
        self._apply(theme.current())
        theme.notifier().changed.connect(self._on_theme)
        self.hide()

    def show_error(self, error: dict[str, Any], context: str = "") -> None:
        self.error = error
        prefix = f"{context}: " if context else ""
        self.label.setText(f"{prefix}{error_text(error)}")
        self.setToolTip(f"Details are in the log file in {log_dir()}")
        self.show()

    @Slot()
    def dismiss(self) -> None:
        self.error = None
        self.hide()

    def text(self) -> str:
        return self.label.text()

    @Slot(object)
    def _on_theme(self, colours: theme.Colours) -> None:
        self._apply(colours)

    def _apply(self, colours: theme.Colours) -> None:
        self.setStyleSheet(f"#errorBanner {{ background: {colours.error_background}; border-radius: 4px; }}"
                           f"#errorBanner QLabel {{ color: {colours.error_text}; }}")
