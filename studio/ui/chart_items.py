"""The pyqtgraph items the live charts are made of (REQ-U03, REQ-U15): a whole-number axis, a curve
that looks bold for a third of a wide pen's cost, and legend samples that only show."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QTransform

__all__ = ["BoldableCurve", "LegendSample", "SeriesItem", "WholeNumberAxis", "pen_key"]


def pen_key(pen: object) -> tuple:
    """What a legend sample shows of a pen (colour, width, style): equal keys draw the same sample."""
    if pen is None:
        return ()
    pen = pg.mkPen(pen)
    return pen.color().name(), pen.widthF(), int(pen.style().value)


_BOLD_OFFSETS = ((0, 0), (1, 0), (0, 1))  # device pixels: a 1-pixel line drawn thrice reads as a 2-pixel one


class BoldableCurve(pg.PlotCurveItem):
    """A curve drawn with a 1-pixel pen; when ``bold``, three times, one device pixel apart.

    Qt strokes a pen wider than one pixel as a polygon, which made the current run's 2-pixel curve
    the most expensive thing in a frame: 4.0 ms a paint for 4,600 points, against 1.2 ms for three
    1-pixel passes that look the same (the earlier runs' curves are 1 pixel wide and cached anyway).
    """

    bold = False

    def paint(self, p, opt, widget) -> None:  # noqa: ANN001 - pyqtgraph's signature
        if not self.bold:
            super().paint(p, opt, widget)
            return
        base = p.transform()
        try:
            for dx, dy in _BOLD_OFFSETS:
                p.setTransform(base * QTransform.fromTranslate(dx, dy))
                super().paint(p, opt, widget)
        finally:
            p.setTransform(base)

    def pixelPadding(self) -> float:  # noqa: N802 - pyqtgraph's name
        return super().pixelPadding() + (1.0 if self.bold else 0.0)


class SeriesItem(pg.PlotDataItem):
    """A plot data item whose line is a :class:`BoldableCurve`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.curve.setParentItem(None)  # the plain curve pyqtgraph made: not yet drawn anywhere
        self.curve = BoldableCurve()
        self.curve.setParentItem(self)
        self.curve.sigClicked.connect(self.sigClicked)
        self.setData(**kwargs)  # data and style reach the new curve


class LegendSample(pg.ItemSample):
    """A legend's line sample that only shows: runs are shown and hidden with their ticks in the run list."""

    def mouseClickEvent(self, event) -> None:  # noqa: ANN001, N802 - pyqtgraph's name
        event.ignore()


class WholeNumberAxis(pg.AxisItem):
    """An axis of whole numbers (epochs, steps): no ticks between them, however far the view zooms in."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: ANN201, N802, N803 - pyqtgraph's names
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return levels or [(1.0, 0.0)]
