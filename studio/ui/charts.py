"""Live training charts on pyqtgraph, fed from bounded histories (REQ-U03, REQ-H23).

Each series keeps a :class:`ChartHistory`, so memory and drawing cost stay bounded for runs of
millions of steps; a curve is redrawn only when new points arrived, at most once per delivered
batch, clipped to the view and peak-downsampled to the screen width.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QWidget

from studio.backend.core.stats_delivery import ChartHistory
from studio.ui import theme

__all__ = ["LiveChart", "SERIES_COLOURS", "RUN_COLOURS"]

SERIES_COLOURS = {
    "train": (31, 119, 180),
    "val": (255, 127, 14),
    "lr": (44, 160, 44),
    "throughput": (148, 103, 189),
}
LEGEND_OFFSETS = {"top-right": (-10, 10), "bottom-right": (-10, -30), "top-left": (60, 10), "bottom-left": (60, -30)}
RUN_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
               (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


class LiveChart(pg.PlotWidget):
    """One plot with named series, e.g. a loss chart with ``train`` and ``val`` curves."""

    def __init__(self, title: str, y_label: str, x_label: str = "step", parent: QWidget | None = None,
                 capacity: int = 4096, legend: str = "top-right", zero_based: bool = False) -> None:
        super().__init__(parent=parent)
        self._title, self._y_label, self._x_label = title, y_label, x_label
        self.capacity = capacity
        self.zero_based = zero_based  # rates and learning rates read best from zero
        self.getPlotItem().setTitle(title)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.legend = self.addLegend(offset=LEGEND_OFFSETS.get(legend, (-10, 10)))
        self.setMouseEnabled(x=True, y=False)
        self.setMinimumSize(160, 120)
        self._histories: dict[str, ChartHistory] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._labels: dict[str, str] = {}
        self._hidden: set[str] = set()
        self._dirty: set[str] = set()
        self.redraws = 0
        self._apply_colours(theme.current())
        theme.notifier().changed.connect(self._on_theme)

    # -- series -------------------------------------------------------------------------------
    def series(self, name: str, *, colour: tuple[int, int, int] | None = None, dashed: bool = False,
               symbol: str | None = None, label: str | None = None) -> ChartHistory:
        if name not in self._histories:
            colour = colour or SERIES_COLOURS.get(name.rsplit(" ", 1)[-1], (100, 100, 100))
            pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            pen.setCosmetic(True)
            curve = self.plot(name=label or name, pen=pen, symbol=symbol, symbolSize=6, symbolBrush=colour,
                              symbolPen=None)
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            curve.setSkipFiniteCheck(True)
            self._histories[name] = ChartHistory(self.capacity)
            self._curves[name] = curve
            self._labels[name] = label or name
        return self._histories[name]

    def add_points(self, name: str, xs: np.ndarray | list[float], ys: np.ndarray | list[float]) -> None:
        self.series(name).extend(xs, ys)
        self._dirty.add(name)

    def redraw(self) -> int:
        """Push new points to the curves that got some; returns how many curves were redrawn."""
        names = [n for n in self._dirty if n in self._curves]
        for name in names:
            x, y = self._histories[name].points()
            self._curves[name].setData(x, y)
        self._dirty.clear()
        if names:
            self.redraws += 1
            if self.zero_based:
                self._fit_from_zero()
        return len(names)

    def _fit_from_zero(self) -> None:
        top = max((h.points()[1].max() for n, h in self._histories.items() if len(h) and n not in self._hidden),
                  default=0.0)
        if np.isfinite(top) and top > 0:
            self.setYRange(0.0, float(top) * 1.08, padding=0)

    def clear_series(self) -> None:
        for curve in self._curves.values():
            self.removeItem(curve)
        if self.legend is not None:
            self.legend.clear()
        self._histories.clear()
        self._curves.clear()
        self._labels.clear()
        self._hidden.clear()
        self._dirty.clear()

    def remove_series(self, name: str) -> None:
        curve = self._curves.pop(name, None)
        if curve is not None:
            self.removeItem(curve)
            if self.legend is not None:
                self.legend.removeItem(curve)
        self._histories.pop(name, None)
        self._labels.pop(name, None)
        self._hidden.discard(name)
        self._dirty.discard(name)

    def set_series_visible(self, name: str, visible: bool) -> None:
        curve = self._curves.get(name)
        if curve is None or visible == (name not in self._hidden):
            return
        curve.setVisible(visible)
        if visible:
            self._hidden.discard(name)
            if self.legend is not None:
                self.legend.addItem(curve, self._labels[name])
        else:
            self._hidden.add(name)
            if self.legend is not None:
                self.legend.removeItem(curve)

    def series_names(self) -> list[str]:
        return list(self._histories)

    def legend_labels(self) -> list[str]:
        if self.legend is None:
            return []
        return [label.text for _, label in self.legend.items]

    def point_count(self, name: str) -> int:
        history = self._histories.get(name)
        return len(history) if history is not None else 0

    def drawn_points(self, name: str) -> int:
        curve = self._curves.get(name)
        if curve is None or curve.xData is None:
            return 0
        return len(curve.xData)

    def set_title(self, title: str, y_label: str | None = None) -> None:
        self._title = title
        self.getPlotItem().setTitle(title)
        if y_label is not None:
            self._y_label = y_label
            self.setLabel("left", y_label)

    # -- export and theme ---------------------------------------------------------------------
    def export_png(self, path: str, width: int | None = None) -> None:
        """Save the plot as a PNG file (REQ-U15)."""
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.getPlotItem())
        if width is not None:
            exporter.parameters()["width"] = int(width)
        exporter.export(path)

    @Slot(object)
    def _on_theme(self, colours: theme.Colours) -> None:
        self._apply_colours(colours)

    def _apply_colours(self, colours: theme.Colours) -> None:
        self.setBackground(colours.plot_background)
        fg = pg.mkColor(colours.plot_foreground)
        plot = self.getPlotItem()
        for axis in ("left", "bottom"):
            item = plot.getAxis(axis)
            item.setPen(fg)
            item.setTextPen(fg)
        plot.setTitle(self._title, color=colours.plot_foreground)
        if self.legend is not None:
            self.legend.setLabelTextColor(fg)
