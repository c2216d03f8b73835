"""A confusion-matrix heat map whose cells can be clicked (REQ-U09).

Rows are the true classes (top to bottom), columns the predicted ones; each cell shows its
count and a click emits :attr:`ConfusionHeatmap.cell_clicked` with ``(true, predicted)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, Qt, Signal, Slot
from PySide6.QtWidgets import QWidget

from studio.ui import theme

__all__ = ["ConfusionHeatmap"]

_CMAP = pg.ColorMap([0.0, 1.0], [(240, 245, 252), (18, 64, 140)])


class _Cells(pg.ImageItem):
    def __init__(self, on_click: Callable[[int, int], None]) -> None:
        super().__init__(axisOrder="row-major")
        self._on_click = on_click

    def mouseClickEvent(self, ev) -> None:  # noqa: ANN001, N802 - pyqtgraph's name
        if ev.button() == Qt.MouseButton.LeftButton and self.image is not None:
            pos = ev.pos()
            row, col = int(pos.y()), int(pos.x())
            if 0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1]:
                ev.accept()
                self._on_click(row, col)
                return
        ev.ignore()


class ConfusionHeatmap(pg.PlotWidget):
    cell_clicked = Signal(int, int)  # true class index, predicted class index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setMenuEnabled(False)
        self.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.setAspectLocked(True)
        plot = self.getPlotItem()
        plot.invertY(True)
        plot.setLabel("left", "true class")
        plot.setLabel("bottom", "predicted class")
        self.cells = _Cells(self._clicked)
        self.cells.setColorMap(_CMAP)
        self.addItem(self.cells)
        self._texts: list[pg.TextItem] = []
        self.matrix = np.zeros((0, 0), dtype=np.int64)
        self.class_names: list[str] = []
        self.setMinimumSize(220, 220)
        self._apply(theme.current())
        theme.notifier().changed.connect(self._on_theme)

    def set_matrix(self, confusion: Sequence[Sequence[int]], class_names: Sequence[str]) -> None:
        matrix = np.asarray(confusion, dtype=np.int64)
        self.matrix = matrix
        self.class_names = [str(c) for c in class_names] or [str(i) for i in range(len(matrix))]
        for text in self._texts:
            self.removeItem(text)
        self._texts = []
        if matrix.size == 0:
            self.cells.clear()
            return
        # share of each true class, so rare classes read as clearly as common ones
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        self.cells.setImage(shares, levels=(0.0, 1.0))
        self.cells.setRect(0, 0, matrix.shape[1], matrix.shape[0])
        n = len(matrix)
        if n <= 20:
            font_px = max(7, min(13, int(200 / n)))
            for r in range(n):
                for c in range(matrix.shape[1]):
                    colour = (255, 255, 255) if shares[r, c] > 0.5 else (30, 30, 30)
                    text = pg.TextItem(str(int(matrix[r, c])), color=colour, anchor=(0.5, 0.5))
                    font = text.textItem.font()
                    font.setPixelSize(font_px)
                    text.setFont(font)
                    text.setPos(c + 0.5, r + 0.5)
                    self.addItem(text)
                    self._texts.append(text)
        names = self.class_names
        step = max(1, n // 15)
        ticks = [(i + 0.5, names[i] if len(names[i]) <= 10 else names[i][:9] + "…") for i in range(0, n, step)]
        plot = self.getPlotItem()
        plot.getAxis("bottom").setTicks([ticks])
        plot.getAxis("left").setTicks([ticks])
        self.setRange(xRange=(0, matrix.shape[1]), yRange=(0, n), padding=0.02)

    def cell_position(self, true: int, predicted: int) -> QPoint:
        """Where the centre of a cell is, in this widget's coordinates (for tests and tours)."""
        view = self.getPlotItem().getViewBox()
        scene = view.mapViewToScene(QPointF(predicted + 0.5, true + 0.5))
        return self.mapFromScene(scene)

    def _clicked(self, row: int, col: int) -> None:
        self.cell_clicked.emit(row, col)

    @Slot(object)
    def _on_theme(self, colours: theme.Colours) -> None:
        self._apply(colours)

    def _apply(self, colours: theme.Colours) -> None:
        self.setBackground(colours.plot_background)
        fg = pg.mkColor(colours.plot_foreground)
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).setPen(fg)
            self.getPlotItem().getAxis(axis).setTextPen(fg)
