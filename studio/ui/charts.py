"""Live training charts on pyqtgraph, fed from bounded histories (REQ-U03, REQ-H23).

Each series keeps a :class:`ChartHistory`, so memory and drawing cost stay bounded for runs of
millions of steps; a curve is redrawn only when new points arrived, at most once per delivered
batch, clipped to the view and peak-downsampled to the screen width.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor, QPen, QPixmapCache
from PySide6.QtWidgets import QGraphicsItem, QWidget

from studio.backend.core.stats_delivery import ChartHistory
from studio.ui import theme
from studio.ui.chart_items import LegendSample, SeriesItem, WholeNumberAxis, pen_key

__all__ = ["LiveChart", "SERIES_COLOURS", "RUN_COLOURS"]

SERIES_COLOURS = {
    "train": (31, 119, 180),
    "val": (255, 127, 14),
    "lr": (44, 160, 44),
    "throughput": (148, 103, 189),
}
LEGEND_OFFSETS = {"top-right": (-10, 10), "bottom-right": (-10, -30), "top-left": (60, 10), "bottom-left": (60, -30)}
# Qt's pixmap cache (10 MB by default) holds the cached curves of all charts. When the curves
# to be cached do not all fit, every frame evicts the pixmap the next curve needs and draws it
# anew: slower than no cache. So the cache is raised to 128 MB and each chart caches only the
# curves of its most recent earlier runs that fit in a quarter of it (20 runs of the loss chart
# at 620 x 330 pixels); older ones are drawn thin, uncached.
_PIXMAP_CACHE_KB = 128 * 1024
RUN_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
               (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _nice_ceiling(value: float) -> float:
    """The smallest round number (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) >= ``value``."""
    if value <= 0 or not np.isfinite(value):
        return 1.0
    power = 10.0 ** np.floor(np.log10(value))
    for step in (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if step * power >= value * (1 - 1e-12):
            return float(step * power)
    return float(10.0 * power)


def _nice_bounds(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` with a 10% margin, widened outwards to multiples of a round step (a fifth of the
    span, and of at least a fifth of the values' size). Every change of range repaints the axes and
    grid (a few milliseconds a chart, taken from the trainer); a loss falling over 100 frames now
    changes the range about ten times instead of at nearly every frame."""
    span = max(hi - lo, 0.2 * max(abs(lo), abs(hi)), 1e-9)
    step = _nice_ceiling(span / 5)
    return float(np.floor((lo - 0.1 * span) / step) * step), float(np.ceil((hi + 0.1 * span) / step) * step)


class LiveChart(pg.PlotWidget):
    """One plot with named series, e.g. a loss chart with ``train`` and ``val`` curves."""

    def __init__(self, title: str, y_label: str, x_label: str = "step", parent: QWidget | None = None,
                 capacity: int = 4096, legend: str | None = "top-right", zero_based: bool = False) -> None:
        axes = {"bottom": WholeNumberAxis("bottom")} if x_label in ("epoch", "step") else None  # counts
        super().__init__(parent=parent, axisItems=axes)
        self._title, self._y_label, self._x_label = title, y_label, x_label
        self.capacity = capacity
        self.zero_based = zero_based  # rates and learning rates read best from zero
        self.ceiling: float | None = None  # an upper limit of the values (1 for accuracy): the view stops there
        self.x_plan: float | None = None  # where the current run's x will end (its last step or epoch), if known
        self.getPlotItem().setTitle(title)
        self.setLabel("left", y_label)
        self.setLabel("bottom", x_label)
        for axis in ("left", "bottom"):
            item = self.getPlotItem().getAxis(axis)
            item.enableAutoSIPrefix(False)
            # axes (and their grid lines) repaint from a cached pixmap unless their range changed
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.showGrid(x=True, y=True, alpha=0.2)
        view = self.getPlotItem().getViewBox()
        view.disableAutoRange()
        view.sigRangeChangedManually.connect(self._stop_following)
        self.getPlotItem().autoBtn.clicked.connect(self._start_following)
        self.following = True  # the view follows the data until the person zooms or pans
        self.legend = self.addLegend(offset=LEGEND_OFFSETS[legend]) if legend else None
        self.setMouseEnabled(x=True, y=False)
        self.setMinimumSize(160, 120)
        self._histories: dict[str, ChartHistory] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._labels: dict[str, str] = {}
        self._hidden: set[str] = set()
        self._in_legend: set[str] = set()
        self._auto_legend = True  # series enter the legend with their first points, until set_legend takes over
        self._dirty: set[str] = set()
        self._bounds: dict[str, tuple[float, float, float, float]] = {}  # x and y extent of each drawn curve
        self.redraws = 0
        self.paint_cpu_s: deque[float] = deque(maxlen=10_000)  # GUI-thread CPU time per paint
        self._apply_colours(theme.current())
        theme.notifier().changed.connect(self._on_theme)

    # -- series -------------------------------------------------------------------------------
    def series(self, name: str, *, colour: tuple[int, int, int] | None = None, dashed: bool = False,
               symbol: str | None = None, label: str | None = None) -> ChartHistory:
        if name not in self._histories:
            colour = colour or SERIES_COLOURS.get(name.rsplit(" ", 1)[-1], (100, 100, 100))
            pen = pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
            pen.setCosmetic(True)
            curve = SeriesItem(pen=pen, symbol=symbol, symbolSize=6, symbolBrush=colour, symbolPen=None)
            self.addItem(curve)
            curve.curve.bold = True
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
        if self._auto_legend and name not in self._in_legend:
            self._show_in_legend(name)

    def set_legend(self, entries: list[tuple[str, QPen | None]]) -> None:
        """Show exactly these legend entries (label and line style; ``None`` draws no line), in order.

        From then on the legend is the caller's: series no longer enter it by themselves. A chart
        that draws many runs keeps its legend short this way, and changes it only between runs,
        since adding an entry lays out the whole legend (several milliseconds of GUI time).
        """
        self._auto_legend = False
        self._in_legend.clear()
        if self.legend is None:
            return
        if [(label.text, pen_key(sample.item.opts["pen"])) for sample, label in self.legend.items] == \
                [(text, pen_key(pen)) for text, pen in entries]:
            return  # unchanged: no layout, no repaint
        self.legend.clear()
        for text, pen in entries:
            self._add_legend_entry(text, pen)

    def _add_legend_entry(self, text: str, pen: QPen | None) -> None:
        self.legend.addItem(LegendSample(pg.PlotDataItem(pen=pen)), text)
        for item in (self.legend, *self.legend.items[-1]):  # the box, sample and label repaint from pixmaps
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def _show_in_legend(self, name: str) -> None:
        """A series enters the legend with its first points (so one made ahead of its data shows no empty entry)."""
        if self._auto_legend and self.legend is not None and name not in self._hidden and self._histories[name].count:
            self._add_legend_entry(self._labels[name], self.series_pen(name))
            self._in_legend.add(name)

    @property
    def has_new_points(self) -> bool:
        return bool(self._dirty)

    def redraw(self) -> int:
        """Push new points to the curves that got some; returns how many curves were redrawn."""
        names = [n for n in self._dirty if n in self._curves]
        for name in names:
            x, y = self._histories[name].points()
            self._curves[name].setData(x, y)
            if len(x):
                self._bounds[name] = (float(np.nanmin(x)), float(np.nanmax(x)), float(np.nanmin(y)), float(np.nanmax(y)))
        self._dirty.clear()
        if names:
            self.redraws += 1
            if self.following:
                self.fit_view()
        return len(names)

    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        cpu = time.thread_time()
        super().paintEvent(event)
        self.paint_cpu_s.append(time.thread_time() - cpu)

    def fit_view(self, tight: bool = False) -> None:
        """Show all visible data, changing the range only in steps so the axes are rarely redrawn;
        ``tight`` (at the end of a run) fits the x range to the data exactly."""
        spans = [b for n, b in self._bounds.items() if n not in self._hidden]
        if not spans:
            return
        x_lo, x_hi = min(b[0] for b in spans), max(b[1] for b in spans)
        y_lo, y_hi = min(b[2] for b in spans), max(b[3] for b in spans)
        if not all(np.isfinite(v) for v in (x_lo, x_hi, y_lo, y_hi)):
            return
        (vx0, vx1), (vy0, vy1) = self.getPlotItem().getViewBox().viewRange()
        left = 0.0 if x_lo >= 0 else x_lo
        if tight:
            self.setXRange(left, max(x_hi, left + 1) * 1.02, padding=0)
        elif self.x_plan is not None and left + 1 <= x_hi <= self.x_plan:
            # as below, but towards the run's planned end by halvings of it: the range changes a few
            # times a run instead of at nearly every frame (a change repaints axes, grid and every
            # cached curve: 3.7 ms a chart, against 0.5 ms for a frame that keeps its range)
            if x_hi > vx1 or x_hi < left + 0.4 * (vx1 - left) or vx0 != left:
                end = self.x_plan
                while end / 2 >= x_hi:
                    end /= 2
                self.setXRange(left, end, padding=0)
        elif x_hi > vx1 or x_hi < left + 0.3 * (vx1 - left) or vx0 != left:
            self.setXRange(left, _nice_ceiling(max(x_hi, left + 1)), padding=0)
        if self.zero_based and y_lo >= 0:
            top = _nice_ceiling(y_hi * 1.05) if y_hi > 0 else 1.0
            if abs(top - vy1) > 1e-12 * max(1.0, top) or vy0 != 0.0:
                self.setYRange(0.0, top, padding=0)
            return
        span = y_hi - y_lo
        if tight or y_lo < vy0 or y_hi > vy1 or span < 0.4 * (vy1 - vy0):
            lo, hi = _nice_bounds(y_lo, y_hi)
            if self.ceiling is not None and y_hi <= self.ceiling:
                hi = min(hi, self.ceiling)  # an accuracy of 1.1 is no value anyone can reach
            self.setYRange(lo, hi, padding=0)

    @Slot()
    def _stop_following(self, *_: object) -> None:
        self.following = False

    @Slot()
    def _start_following(self, *_: object) -> None:
        self.following = True
        self.fit_view()

    def clear_series(self) -> None:
        for curve in self._curves.values():
            self.removeItem(curve)
        if self.legend is not None:
            self.legend.clear()
        self._histories.clear()
        self._curves.clear()
        self._bounds.clear()
        self._labels.clear()
        self._hidden.clear()
        self._in_legend.clear()
        self._dirty.clear()
        self.following = True

    def remove_series(self, name: str) -> None:
        curve = self._curves.pop(name, None)
        if curve is not None:
            self.removeItem(curve)
            if name in self._in_legend:
                self.legend.removeItem(self._labels[name])
        self._in_legend.discard(name)
        self._histories.pop(name, None)
        self._bounds.pop(name, None)
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
            self._show_in_legend(name)
        else:
            self._hidden.add(name)
            if name in self._in_legend:
                self.legend.removeItem(self._labels[name])
                self._in_legend.discard(name)

    def series_names(self) -> list[str]:
        return list(self._histories)

    def recede_series(self) -> None:
        """Draw the curves made so far with a 1-pixel pen, the most recent from cached pixmaps.

        Called when a new run starts, for the earlier runs' curves: they recede behind the new
        run's 2-pixel curves, and they are cheap to draw, since every frame the new run draws takes
        its GUI time from the trainer. Qt strokes a pen wider than one pixel as a polygon: fifteen
        overlaid runs took 25 ms a frame at 2 pixels and 3 ms at 1 pixel. A cached curve is painted
        from its pixmap while the view keeps its range; only as many as fit in this chart's share
        of the pixmap cache are cached (see ``_PIXMAP_CACHE_KB``).
        """
        if QPixmapCache.cacheLimit() < _PIXMAP_CACHE_KB:
            QPixmapCache.setCacheLimit(_PIXMAP_CACHE_KB)
        ratio = self.devicePixelRatioF()
        curve_kb = max(1.0, self.width() * self.height() * ratio * ratio * 4 / 1024)
        cached = int(QPixmapCache.cacheLimit() / 4 / curve_kb)
        names = list(self._curves)
        for k, name in enumerate(names):
            mode = QGraphicsItem.CacheMode.DeviceCoordinateCache if k >= len(names) - cached \
                else QGraphicsItem.CacheMode.NoCache
            self._curves[name].curve.setCacheMode(mode)
            self._set_width(name, 1)

    def emphasise_series(self, names: list[str]) -> None:
        """Draw these curves at full width again, uncached (a run that trains more)."""
        for name in names:
            if name in self._curves:
                self._curves[name].curve.setCacheMode(QGraphicsItem.CacheMode.NoCache)
                self._set_width(name, 2)

    def series_width(self, name: str) -> float:
        """How wide the curve looks, in pixels: 2 when bold, else 1."""
        return 2.0 if self._curves[name].curve.bold else 1.0

    def series_pen(self, name: str) -> QPen:
        """The pen a series looks drawn with (for a legend sample)."""
        pen = pg.mkPen(self._curves[name].opts["pen"])
        pen.setWidthF(self.series_width(name))
        return pen

    def _set_width(self, name: str, width: float) -> None:
        curve = self._curves[name].curve
        if curve.bold != (width >= 2):
            curve.bold = width >= 2
            curve.prepareGeometryChange()  # its padding changed
            curve.update()

    def has_series(self, name: str) -> bool:
        return name in self._histories

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
        if title == self._title and y_label in (None, self._y_label):
            return  # a new title lays the plot out again: only when it changes
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
            backdrop = QColor(colours.plot_background)
            backdrop.setAlpha(215)  # the legend reads over the curves it covers
            self.legend.setBrush(backdrop)
            self.legend.setLabelTextColor(fg)
            for _, label in self.legend.items:
                label.setText(label.text, color=fg)
