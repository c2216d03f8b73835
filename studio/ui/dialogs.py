"""File dialogs that remember their last folder per kind (REQ-U12).

Only the static ``QFileDialog`` calls block, so tests replace exactly those
(``getOpenFileName``, ``getSaveFileName``, ``getExistingDirectory``) with monkeypatch.
"""

from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog, QWidget

from studio.ui.settings import Settings

__all__ = ["open_file", "save_file", "open_folder"]


def _start(kind: str, suggested: str = "") -> str:
    folder = Settings().last_folder(kind)
    if folder and suggested:
        return os.path.join(folder, suggested)
    return folder or suggested


def _remember(kind: str, path: str, is_folder: bool = False) -> None:
    if path:
        Settings().set_last_folder(kind, path if is_folder else os.path.dirname(path))


def open_file(parent: QWidget | None, kind: str, caption: str, filters: str) -> str:
    """The chosen file, or ``""`` when the person cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, caption, _start(kind), filters)
    _remember(kind, path)
    return path or ""


def save_file(parent: QWidget | None, kind: str, caption: str, filters: str, suggested: str = "") -> str:
    path, _ = QFileDialog.getSaveFileName(parent, caption, _start(kind, suggested), filters)
    _remember(kind, path)
    return path or ""


def open_folder(parent: QWidget | None, kind: str, caption: str) -> str:
    path = QFileDialog.getExistingDirectory(parent, caption, _start(kind))
    _remember(kind, path, is_folder=True)
    return path or ""
