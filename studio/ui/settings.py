"""Settings that persist between sessions (REQ-U12), on ``QSettings`` in INI format.

INI everywhere (not the registry or a plist), so ``QSettings.setPath(IniFormat, UserScope, dir)``
points every instance at a temporary folder in tests. Kept: window geometry and state, splitter
sizes, the current area, the last folder per dialog kind, the theme and the last configuration.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

__all__ = ["Settings"]


class Settings:
    def __init__(self) -> None:
        self.q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Studio", "Studio")

    # -- plain values -------------------------------------------------------------------------
    def text(self, key: str, default: str = "") -> str:
        value = self.q.value(key, default)
        return value if isinstance(value, str) else default

    def set_text(self, key: str, value: str) -> None:
        self.q.setValue(key, value)

    # -- folders, theme, configuration ------------------------------------------------------------
    def last_folder(self, kind: str) -> str:
        return self.text(f"folders/{kind}")

    def set_last_folder(self, kind: str, folder: str) -> None:
        self.set_text(f"folders/{kind}", folder)

    def theme(self) -> str:
        return self.text("ui/theme", "light")

    def set_theme(self, name: str) -> None:
        self.set_text("ui/theme", name)

    def last_configuration(self) -> dict[str, Any] | None:
        text = self.text("config/last")
        try:
            value = json.loads(text) if text else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set_last_configuration(self, snapshot: dict[str, Any]) -> None:
        self.set_text("config/last", json.dumps(snapshot))

    # -- window layout ------------------------------------------------------------------------
    def save_window(self, window: QMainWindow, splitters: dict[str, QSplitter], area: int) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState())
        self.q.setValue("window/area", area)
        for name, splitter in splitters.items():
            self.q.setValue(f"splitters/{name}", splitter.saveState())
        self.q.sync()

    def restore_window(self, window: QMainWindow, splitters: dict[str, QSplitter]) -> int | None:
        """Restore what :meth:`save_window` kept; returns the saved area index, if any."""
        geometry = self.q.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            window.restoreGeometry(geometry)
        state = self.q.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            window.restoreState(state)
        for name, splitter in splitters.items():
            saved = self.q.value(f"splitters/{name}")
            if isinstance(saved, QByteArray) and not saved.isEmpty():
                splitter.restoreState(saved)
        area = self.q.value("window/area")
        try:
            return int(area) if area is not None else None
        except (TypeError, ValueError):
            return None

    def sync(self) -> None:
        self.q.sync()
