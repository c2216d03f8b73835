"""Light and dark themes (REQ-U16): the Qt palette and the pyqtgraph colours together.

``apply(app, "dark")`` sets the Fusion style and a palette, tells pyqtgraph which background and
foreground new plots use, and announces the change through :func:`notifier` so plots already on
screen recolour themselves.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["Colours", "THEMES", "apply", "current", "notifier"]


@dataclass(frozen=True)
class Colours:
    name: str
    window: str
    base: str
    alternate: str
    text: str
    mid: str
    highlight: str
    plot_background: str
    plot_foreground: str
    error_background: str
    error_text: str
    muted: str


THEMES = {
    "light": Colours("light", "#f3f3f3", "#ffffff", "#f7f7f7", "#1f1f1f", "#c8c8c8", "#2f6fdd",
                     "#ffffff", "#404040", "#fdecea", "#8a1c12", "#666666"),
    "dark": Colours("dark", "#2a2c30", "#1e1f22", "#26282c", "#e4e4e4", "#4a4d52", "#4c8dff",
                    "#1b1c1f", "#cfcfcf", "#4a2020", "#ffb4a9", "#a0a0a0"),
}


class _Notifier(QObject):
    changed = Signal(object)  # Colours


_notifier: _Notifier | None = None
_current = THEMES["light"]


def notifier() -> _Notifier:
    global _notifier
    if _notifier is None:
        _notifier = _Notifier()
    return _notifier


def current() -> Colours:
    return _current


def palette(colours: Colours) -> QPalette:
    pal = QPalette()
    role = QPalette.ColorRole
    text = QColor(colours.text)
    for r, value in ((role.Window, colours.window), (role.Base, colours.base), (role.AlternateBase, colours.alternate),
                     (role.Button, colours.window), (role.Mid, colours.mid), (role.Highlight, colours.highlight),
                     (role.ToolTipBase, colours.base)):
        pal.setColor(r, QColor(value))
    for r in (role.WindowText, role.Text, role.ButtonText, role.ToolTipText):
        pal.setColor(r, text)
    pal.setColor(role.HighlightedText, QColor("#ffffff"))
    pal.setColor(role.PlaceholderText, QColor(colours.muted))
    pal.setColor(role.Link, QColor(colours.highlight))
    disabled = QColor(colours.muted)
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return pal


def apply(app: QApplication | None, name: str) -> Colours:
    """Switch to theme ``name`` (``light`` or ``dark``); unknown names fall back to light."""
    global _current
    colours = THEMES.get(name, THEMES["light"])
    _current = colours
    pg = sys.modules.get("pyqtgraph")  # not imported yet at start-up: the plots read current() when made
    if pg is not None:
        pg.setConfigOptions(background=colours.plot_background, foreground=colours.plot_foreground)
    if app is not None:
        app.setStyle("Fusion")
        app.setPalette(palette(colours))
    notifier().changed.emit(colours)
    return colours
