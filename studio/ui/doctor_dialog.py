"""Help > About this system: the ``studio doctor`` report in the window, with a Copy button.

The report is :mod:`studio.doctor`'s, as on the command line; the backend's part (torch, its
build, the devices) comes from the ``environment`` handler on the task worker, and the running
application adds what only it knows: the exact Qt version and the platform plugin in use.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot, qVersion
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from studio.backend.core.environment import EnvironmentRequest
from studio.doctor import collect, format_report, problems
from studio.ui.tasks import TaskRunner

__all__ = ["DoctorDialog", "show_doctor"]


class DoctorDialog(QDialog):
    """Shows the report at once, with the backend's part filled in when its worker answers."""

    def __init__(self, tasks: TaskRunner | None, parent: QWidget | None = None, settings_file: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About this system")
        self.resize(860, 560)
        self.report: dict[str, Any] = collect({"pending": "asking the backend…"}, settings_file=settings_file, qt={
            "qt": qVersion(), "plugin": QGuiApplication.platformName()})
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.copy_button = QPushButton("&Copy")
        self.copy_button.setToolTip("Copy the report, to paste into a bug report")
        self.copy_button.clicked.connect(self.copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("The same report as <code>studio doctor</code> in a terminal."))
        row.addStretch(1)
        row.addWidget(self.copy_button)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addLayout(row)
        self._render()
        if tasks is not None:
            tasks.submit("environment", EnvironmentRequest(), self._on_backend, self._on_backend_error)

    def report_text(self) -> str:
        return format_report(self.report)

    @Slot()
    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())
        self.copy_button.setText("Copied")

    def _on_backend(self, environment: Any) -> None:
        self._set_backend(environment.to_dict())

    def _on_backend_error(self, error: dict) -> None:
        self._set_backend({"error": error.get("message") or error.get("code") or "unknown error"})

    def _set_backend(self, backend: dict[str, Any]) -> None:
        if not isValid(self):  # closed (and deleted) before the worker answered
            return
        self.report["backend"] = {k: v for k, v in backend.items() if k != "kind"}
        self.report["problems"] = problems(self.report)
        self._render()

    def _render(self) -> None:
        self.text.setPlainText(self.report_text())


def show_doctor(window: Any) -> DoctorDialog:
    """Open (or raise) the window's report dialog; it is not modal, so a run goes on behind it."""
    dialog = window.findChild(DoctorDialog)
    if dialog is None:
        settings = getattr(window, "settings", None)
        dialog = DoctorDialog(getattr(window, "tasks", None), window,
                              settings.q.fileName() if settings is not None else None)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
    else:
        dialog.activateWindow()  # already open: bring it to the front
    return dialog
