"""A grid of small images with captions (data previews, samples behind a confusion cell, mistakes)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

__all__ = ["ImageGrid", "to_qimage"]


def to_qimage(pixels: Any) -> QImage:
    """Nested lists or an array ``(C, H, W)`` / ``(H, W)`` of values 0..1 as an 8-bit QImage."""
    array = np.asarray(pixels, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4):
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    array = np.ascontiguousarray((np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8))
    h, w = array.shape[:2]
    if array.ndim == 2:
        return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageGrid(QScrollArea):
    def __init__(self, cell: int = 72, columns: int = 6, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell, self.columns = cell, columns
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setSpacing(6)
        self._grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.setWidget(self._inner)
        self.captions: list[str] = []

    def clear(self) -> None:
        while self._grid.count():
            item = self._grid.takeAt(0)
            widget = item.widget()
            if widget is not None:
                widget.deleteLater()
        self.captions = []

    def set_images(self, images: list[Any], captions: list[str]) -> None:
        self.clear()
        for i, (pixels, caption) in enumerate(zip(images, captions)):
            box = QWidget()
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.setSpacing(2)
            picture = QLabel()
            image = to_qimage(pixels)
            picture.setPixmap(QPixmap.fromImage(image).scaled(
                self.cell, self.cell, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text = QLabel(caption)
            text.setAlignment(Qt.AlignmentFlag.AlignCenter)
            text.setWordWrap(True)
            text.setMaximumWidth(self.cell + 24)
            layout.addWidget(picture)
            layout.addWidget(text)
            self._grid.addWidget(box, i // self.columns, i % self.columns)
            self.captions.append(caption)
