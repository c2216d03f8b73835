"""Live training charts on pyqtgraph, fed from bounded histories (REQ-U03, REQ-H23).

Each series keeps a :class:`ChartHistory`, so memory stays bounded for runs of millions of
steps; the curve is redrawn at most once per delivered batch, with clipping to the view.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from studio.backend.core.stats_delivery import ChartHistory

__all__ = ["LiveChart", "SERIES_COLOURS"]

SERIES_COLOURS = {
    "train": (31, 119, 180),
    "val": (255, 127, 14),
    "lr": (44, 160, 44),
    "throughput": (148, 103, 189),
}


class LiveChart(pg.PlotWidget):
    """One plot with named series, e.g. a loss chart with ``train`` and ``val`` curves."""

    def __init__(self, title: str, y_label: str, x_label: str = "step", parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setBackground(None)
        self.setTitle(title)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(-10, 10))
        self.setMouseEnabled(x=True, y=False)
        self._histories: dict[str, ChartHistory] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}

    def series(self, name: str, *, symbol: str | None = None) -> ChartHistory:
        if name not in self._histories:
            colour = SERIES_COLOURS.get(name, (100, 100, 100))
            curve = self.plot(name=name, pen=pg.mkPen(colour, width=2), symbol=symbol,
                              symbolSize=6, symbolBrush=colour)
            curve.setClipToView(True)
            self._histories[name] = ChartHistory()
            self._curves[name] = curve
        return self._histories[name]

    def add_points(self, name: str, xs: np.ndarray | list[float], ys: np.ndarray | list[float]) -> None:
        self.series(name).extend(xs, ys)

    def redraw(self) -> None:
        for name, history in self._histories.items():
            x, y = history.points()
            self._curves[name].setData(x, y)

    def clear_series(self) -> None:
        for curve in self._curves.values():
            self.removeItem(curve)
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.clear()
        self._histories.clear()
        self._curves.clear()

    def point_count(self, name: str) -> int:
        history = self._histories.get(name)
        return len(history) if history is not None else 0
