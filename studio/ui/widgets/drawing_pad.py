"""A pad to draw a digit on, read as the 8x8 digits data reads (REQ-U09).

The built-in digits came from 32x32 black-and-white scans in which every 4x4 block was counted
(0 to 16 inked pixels) and scaled to 0..1. The pad does the same: a square around the ink is
scaled to 24x24 and centred in 32x32, thresholded, and counted in 4x4 blocks.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

__all__ = ["DrawingPad", "image_to_digit"]

CANVAS = 224


def _gray(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.bytesPerLine() * h)
    return buffer.reshape(h, image.bytesPerLine())[:, :w].astype(np.float32) / 255.0


def image_to_digit(image: QImage) -> np.ndarray:
    """A drawing (white ink on black) as an 8x8 array of values 0..1, like a sample of ``digits``."""
    ink = _gray(image)
    rows, cols = np.nonzero(ink > 0.2)
    if len(rows) == 0:
        return np.zeros((8, 8), dtype=np.float32)
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    # a square around the ink (never under half the pad, so a small scribble is not blown up),
    # so strokes keep their thickness relative to the digit as the scans did
    side = int(max(bottom - top, right - left, image.width() // 2))
    cx, cy = (left + right) // 2, (top + bottom) // 2
    crop = image.copy(QRect(int(cx - side // 2), int(cy - side // 2), side, side))  # outside the pad is black
    fitted = crop.scaled(QSize(24, 24), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    square = QImage(32, 32, QImage.Format.Format_Grayscale8)
    square.fill(QColor(0, 0, 0))
    painter = QPainter(square)
    painter.drawImage(QPoint((32 - fitted.width()) // 2, (32 - fitted.height()) // 2), fitted)
    painter.end()
    bits = (_gray(square) > 0.35).astype(np.float32)
    return bits.reshape(8, 4, 8, 4).sum(axis=(1, 3)) / 16.0


class DrawingPad(QWidget):
    """Draw with the left mouse button; :attr:`drawn` fires after each stroke segment."""

    drawn = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(CANVAS, CANVAS)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a digit here with the mouse; the prediction updates as you draw.")
        self.image = QImage(CANVAS, CANVAS, QImage.Format.Format_Grayscale8)
        self.image.fill(QColor(0, 0, 0))
        self._last: QPointF | None = None
        self.pen_width = CANVAS // 6

    def clear(self) -> None:
        self.image.fill(QColor(0, 0, 0))
        self.update()
        self.drawn.emit()

    def is_empty(self) -> bool:
        return not bool((_gray(self.image) > 0.2).any())

    def digit(self) -> np.ndarray:
        return image_to_digit(self.image)

    def draw_line(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255), self.pen_width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                            Qt.PenJoinStyle.RoundJoin))
        painter.drawLine(a, b)
        painter.end()
        self.update()

    def draw_stroke(self, points: list[tuple[float, float]]) -> None:
        """Draw a polyline given in 0..1 pad coordinates, as a mouse stroke would (then emit once)."""
        scaled = [QPointF(x * CANVAS, y * CANVAS) for x, y in points]
        for a, b in zip(scaled, scaled[1:] or scaled):
            self.draw_line(a, b)
        self.drawn.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = event.position()
            self.draw_line(self._last, self._last)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._last is not None and event.buttons() & Qt.MouseButton.LeftButton:
            point = event.position()
            self.draw_line(self._last, point)
            self._last = point
            self.drawn.emit()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._last is not None:
            self._last = None
            self.drawn.emit()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.drawImage(0, 0, self.image)
        painter.setPen(QPen(QColor(90, 90, 90), 1))
        painter.drawRect(0, 0, CANVAS - 1, CANVAS - 1)
        painter.end()
