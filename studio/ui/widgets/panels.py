"""Small layout helpers shared by the areas."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QScrollArea, QWidget

__all__ = ["side_panel", "compact_combo"]


def side_panel(content: QWidget, width: int = 340) -> QScrollArea:
    """``content`` in a vertical-only scroll area of at least ``width`` pixels (settings columns)."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    scroll.setWidget(content)
    scroll.setMinimumWidth(width)
    for combo in content.findChildren(QComboBox):
        compact_combo(combo)
    return scroll


def compact_combo(combo: QComboBox, chars: int = 12) -> QComboBox:
    """A combo box whose width does not grow with its longest entry (the popup still shows it all)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    combo.setMinimumWidth(8 * chars)  # Qt still sizes from the longest entry when it is the current one
    return combo
