"""Bar charts: the class balance of a dataset and the side-by-side distillation comparison."""

from __future__ import annotations

from collections.abc import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Slot
from PySide6.QtWidgets import QWidget

from studio.ui import theme

__all__ = ["BarChart"]


class BarChart(pg.PlotWidget):
    def __init__(self, title: str, y_label: str, parent: QWidget | None = None, value_format: str = "",
                 y_max: float | None = None) -> None:
        super().__init__(parent=parent)
        self._title = title
        self.value_format = value_format  # e.g. "{:.1%}": the value written above each bar
        self.y_max = y_max
        self._texts: list[pg.TextItem] = []
        self.setLabel("left", y_label)
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).enableAutoSIPrefix(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.setMinimumHeight(140)
        self._bars: pg.BarGraphItem | None = None
        self.labels: list[str] = []
        self.values: list[float] = []
        self._apply(theme.current())
        theme.notifier().changed.connect(self._on_theme)

    def set_bars(self, labels: Sequence[str], values: Sequence[float],
                 colours: Sequence[tuple[int, int, int]] | None = None) -> None:
        if self._bars is not None:
            self.removeItem(self._bars)
            self._bars = None
        for text in self._texts:
            self.removeItem(text)
        self._texts = []
        self.labels, self.values = [str(x) for x in labels], [float(v) for v in values]
        if not self.values:
            return
        brushes = [pg.mkBrush(*c) for c in colours] if colours else [pg.mkBrush(47, 111, 221)] * len(self.values)
        self._bars = pg.BarGraphItem(x=list(range(len(self.values))), height=self.values, width=0.7, brushes=brushes,
                                     pen=None)
        self.addItem(self._bars)
        step = max(1, len(self.labels) // 20)
        ticks = [(i, name if len(name) <= 12 else name[:11] + "…") for i, name in enumerate(self.labels)][::step]
        self.getPlotItem().getAxis("bottom").setTicks([ticks])
        self.setXRange(-0.6, len(self.values) - 0.4, padding=0)
        top = self.y_max if self.y_max is not None else max(self.values)
        self.setYRange(min(0.0, min(self.values)), top * 1.12 if top > 0 else 1.0, padding=0)
        if self.value_format:
            colour = theme.current().plot_foreground
            for i, value in enumerate(self.values):
                text = pg.TextItem(self.value_format.format(value), color=colour, anchor=(0.5, 1.0))
                text.setPos(i, value)
                self.addItem(text)
                self._texts.append(text)

    @Slot(object)
    def _on_theme(self, colours: theme.Colours) -> None:
        self._apply(colours)

    def _apply(self, colours: theme.Colours) -> None:
        self.setBackground(colours.plot_background)
        fg = pg.mkColor(colours.plot_foreground)
        for axis in ("left", "bottom"):
            self.getPlotItem().getAxis(axis).setPen(fg)
            self.getPlotItem().getAxis(axis).setTextPen(fg)
        self.getPlotItem().setTitle(self._title, color=colours.plot_foreground)
