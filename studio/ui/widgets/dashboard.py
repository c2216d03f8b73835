"""The live training dashboard: loss, metric, learning rate and throughput, runs overlaid (REQ-U03, REQ-U15).

Each run gets a colour; its training curve is solid and its validation curve dashed.
Runs stay listed with a check box that shows or hides their curves, and any chart exports to PNG.
The loss and metric charts carry a legend: the line-style key, then the most recent shown runs
by colour (at most :data:`LEGEND_RUNS`; the run list below names every run). It changes only
between runs and when runs are shown, hidden or forgotten, never while a run draws. The
dashboard only draws what :meth:`Dashboard.feed` gives it: batches of core events delivered by
the coalesced drain, within the run's GUI-time budget (:mod:`studio.ui.gui_budget`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.backend.core.events import EpochStats, RunStarted, StepStats
from studio.ui import theme
from studio.ui.charts import RUN_COLOURS, LiveChart
from studio.ui.gui_budget import GuiBudget

__all__ = ["Dashboard", "RunEntry"]

_EMA = 0.1  # smoothing of the per-step throughput, so the chart reads as a rate, not noise
LEGEND_RUNS = 6  # runs named in a chart's legend at most (the most recent shown ones); the run list names all


@dataclass
class RunEntry:
    key: str
    label: str
    colour: tuple[int, int, int]
    item: QListWidgetItem
    metric: str = ""
    throughput: float | None = None
    summary: str = ""
    validation: bool = True  # whether the run has (or is expected to have) validation curves
    models: list[str] = field(default_factory=list)  # backend handles of what the run trained (Train more adds one)


class Dashboard(QWidget):
    export_requested = Signal(object)  # the LiveChart to save as PNG
    runs_forgotten = Signal(list)  # the model handles of the runs "Forget hidden runs" removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.loss_chart = LiveChart("Loss", "loss", "step")
        self.metric_chart = LiveChart("Metric", "metric", "epoch", legend="bottom-right")
        # one legend per run list is enough: these two take the runs' colours from the list below
        self.lr_chart = LiveChart("Learning rate", "learning rate", "step", legend=None, zero_based=True)
        self.throughput_chart = LiveChart("Throughput", "samples / s", "step", legend=None, zero_based=True)
        for chart in (self.loss_chart, self.metric_chart):
            chart.legend.setColumnCount(2)  # the style key on one row, then two runs a row
        theme.notifier().changed.connect(self._on_theme)
        self._secondary = (self.lr_chart, self.throughput_chart)
        self.charts = {"Loss": self.loss_chart, "Metric": self.metric_chart,
                       "Learning rate": self.lr_chart, "Throughput": self.throughput_chart}
        grid = QGridLayout()
        grid.setSpacing(6)
        grid.addWidget(self.loss_chart, 0, 0)
        grid.addWidget(self.metric_chart, 0, 1)
        grid.addWidget(self.lr_chart, 1, 0)
        grid.addWidget(self.throughput_chart, 1, 1)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

        self.runs_list = QListWidget()
        self.runs_list.setToolTip("Every run of this session. Tick a run to draw it; untick it to hide its curves.")
        self.runs_list.setMaximumHeight(96)
        self.runs_list.itemChanged.connect(self._on_item_changed)
        self.chart_choice = QComboBox()
        self.chart_choice.addItems(list(self.charts))
        self.chart_choice.setToolTip("Which chart to save as a picture.")
        self.export_button = QPushButton("Save chart as PNG…")
        self.export_button.setToolTip("Save the chosen chart as a PNG picture.")
        self.export_button.clicked.connect(self._request_export)
        self.clear_button = QPushButton("Forget hidden runs")
        self.clear_button.setToolTip("Remove the runs whose box is unticked from the charts and the list.")
        self.clear_button.clicked.connect(self.remove_hidden_runs)
        tools = QVBoxLayout()
        tools.addWidget(self.chart_choice)
        tools.addWidget(self.export_button)
        tools.addWidget(self.clear_button)
        tools.addStretch(1)
        bottom = QHBoxLayout()
        runs_box = QVBoxLayout()
        runs_box.addWidget(QLabel("Runs (tick to compare)"))
        runs_box.addWidget(self.runs_list)
        bottom.addLayout(runs_box, 1)
        bottom.addLayout(tools)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(grid, 1)
        layout.addLayout(bottom)
        self.runs: dict[str, RunEntry] = {}
        self.current: RunEntry | None = None
        self._count = 0
        self.max_rate = 30.0
        self.budget = GuiBudget()  # the run's GUI-time budget (the owner sets its RunBridge's); idle: no limit
        self.frames = 0
        self._next_frame = 0.0
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(self._draw_pending)
        self._slices: list[LiveChart] = []
        self._slice_timer = QTimer(self)
        self._slice_timer.setSingleShot(True)
        self._slice_timer.setInterval(0)
        self._slice_timer.timeout.connect(self._draw_slice)
        self.slice_cpu_s: deque[float] = deque(maxlen=10_000)  # GUI-thread CPU time per chart update

    # -- runs ---------------------------------------------------------------------------------
    def new_run(self, description: str = "", validation: bool = True) -> RunEntry:
        """A new run, drawn in the next colour; ``validation`` says whether it will have validation curves."""
        self._count += 1
        key = f"Run {self._count}"
        colour = RUN_COLOURS[(self._count - 1) % len(RUN_COLOURS)]
        item = QListWidgetItem()
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setForeground(_brush(colour))
        for chart in self.charts.values():
            chart.recede_series()  # the earlier runs' curves: thin, and painted from a pixmap
        entry = RunEntry(key, description, colour, item, validation=validation)
        self.runs[key] = entry
        self.current = entry
        self.runs_list.blockSignals(True)
        self.runs_list.addItem(item)
        self.runs_list.blockSignals(False)
        self._update_item(entry)
        # the curves are made now, before the run starts: a curve costs a few milliseconds of GUI
        # time, which during the run would be taken from the training thread
        for chart, kind in ((self.loss_chart, "train"), (self.loss_chart, "val"), (self.lr_chart, "lr"),
                            (self.throughput_chart, "rate"), (self.metric_chart, "train"), (self.metric_chart, "val")):
            self._series(chart, entry, kind)
        self._refresh_legends()
        self._next_frame = 0.0  # the run's first points are drawn as soon as its budget allows
        return entry

    def continue_run(self, key: str) -> RunEntry:
        """Keep drawing into an earlier run (Train more continues its curves)."""
        self.current = self.runs[key]
        self.current.throughput = None
        for chart in self.charts.values():
            chart.recede_series()
            chart.emphasise_series([n for n in chart.series_names() if n.split("/")[0] == key])
        self._refresh_legends()
        self._next_frame = 0.0
        return self.current

    def end_run(self) -> None:
        """The current run ended: draw everything it sent and name in the legends what it drew."""
        self.redraw(force=True)
        entry = self.current
        if entry is not None:
            entry.validation = self.loss_chart.point_count(f"{entry.key}/val") > 0
        self._refresh_legends()

    def legend_entries(self) -> list[tuple[str, object]]:
        """The legend of the loss and metric charts: ``(label, pen)``, the style key first."""
        shown = [e for e in self.runs.values() if e.item.checkState() == Qt.CheckState.Checked]
        if not shown:
            return []
        named = shown[-LEGEND_RUNS:]
        if self.current in shown and self.current not in named:  # Train more on an earlier run
            named = [*named[1:], self.current]
            named.sort(key=shown.index)
        key = theme.current().plot_foreground  # the line-style key in the text colour: no run has it
        entries: list[tuple[str, object]] = [("training", pg.mkPen(key, width=1.5))]
        if any(e.validation for e in shown):
            entries.append(("validation", pg.mkPen(key, width=1.5, style=Qt.PenStyle.DashLine)))
        for e in named:
            name = f"{e.key}/train"
            width = self.loss_chart.series_width(name) if self.loss_chart.has_series(name) else 2.0
            entries.append((e.key, pg.mkPen(e.colour, width=width)))
        if len(shown) > len(named):
            entries.append((f"+{len(shown) - len(named)} earlier", None))
        return entries

    @Slot(object)
    def _on_theme(self, *_: object) -> None:
        self._refresh_legends()

    def _refresh_legends(self) -> None:
        entries = self.legend_entries()
        for chart in (self.loss_chart, self.metric_chart):
            chart.set_legend(entries)  # type: ignore[arg-type]

    def set_summary(self, key: str, summary: str) -> None:
        entry = self.runs.get(key)
        if entry is not None:
            entry.summary = summary
            self._update_item(entry)

    def _update_item(self, entry: RunEntry) -> None:
        parts = [entry.key, entry.label, entry.summary]
        self.runs_list.blockSignals(True)
        entry.item.setText(" · ".join(p for p in parts if p))
        self.runs_list.blockSignals(False)

    def set_run_visible(self, key: str, visible: bool) -> None:
        entry = self.runs[key]
        state = Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked
        if entry.item.checkState() != state:
            entry.item.setCheckState(state)  # itemChanged does the rest
            return
        for chart in self.charts.values():
            for name in chart.series_names():
                if name.split("/")[0] == key:
                    chart.set_series_visible(name, visible)
        self._refresh_legends()

    def visible_runs(self) -> list[str]:
        return [k for k, e in self.runs.items() if e.item.checkState() == Qt.CheckState.Checked]

    def add_model(self, key: str, handle: str) -> None:
        """Record a model handle the run produced, so that forgetting the run can release it."""
        if key in self.runs and handle and handle not in self.runs[key].models:
            self.runs[key].models.append(handle)

    @Slot()
    def remove_hidden_runs(self) -> None:
        """Remove the unticked runs from the charts and the list; :attr:`runs_forgotten` names their models."""
        forgotten: list[str] = []
        for key in [k for k in self.runs if k not in self.visible_runs()]:
            entry = self.runs.pop(key)
            forgotten.extend(entry.models)
            for chart in self.charts.values():
                for name in [n for n in chart.series_names() if n.split("/")[0] == key]:
                    chart.remove_series(name)
            self.runs_list.takeItem(self.runs_list.row(entry.item))
            if self.current is entry:
                self.current = None
        self._refresh_legends()
        if forgotten:
            self.runs_forgotten.emit(forgotten)

    @Slot(QListWidgetItem)
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        key = item.data(Qt.ItemDataRole.UserRole)
        if key in self.runs:
            self.set_run_visible(key, item.checkState() == Qt.CheckState.Checked)

    @Slot()
    def _request_export(self) -> None:
        self.export_requested.emit(self.charts[self.chart_choice.currentText()])

    # -- data -----------------------------------------------------------------------------------
    def _series(self, chart: LiveChart, entry: RunEntry, kind: str) -> str:
        name = f"{entry.key}/{kind}"
        if not chart.has_series(name):
            dashed = kind == "val"
            # no point symbols: a scatter item costs as much to update as the four curves together
            chart.series(name, colour=entry.colour, dashed=dashed)
            if entry.item.checkState() != Qt.CheckState.Checked:
                chart.set_series_visible(name, False)
        return name

    def feed(self, batch: list) -> None:
        """Add a batch of core events of the current run (step and epoch statistics).

        Every GUI-thread millisecond is taken from the training thread (the GIL), so the batch is
        gathered into one list per series first and each series gets one ``add_points`` per batch,
        however many steps and epochs the batch holds (a fast run ends dozens of epochs a second).
        """
        if self.current is not None:
            self._feed(self.current, batch)

    def _feed(self, entry: RunEntry, batch: list) -> None:
        # one pass to split the batch, then one comprehension per field (half the time of appending per event)
        step_events = [e for e in batch if isinstance(e, StepStats)]
        others = [e for e in batch if not isinstance(e, StepStats)] if len(step_events) < len(batch) else []
        steps = [e.step for e in step_events]
        losses = [e.loss for e in step_events]
        lrs = [e.lr for e in step_events]
        rates: list[float] = []
        rate = entry.throughput
        inf = float("inf")
        for e in step_events:
            sps = e.samples_per_s if e.samples_per_s < inf else (rate or 0.0)
            rate = sps if rate is None else rate + _EMA * (sps - rate)
            rates.append(rate)
        val_loss: tuple[list[float], list[float]] = ([], [])
        metric_points: dict[str, tuple[list[float], list[float]]] = {"train": ([], []), "val": ([], [])}
        for event in others:
            if isinstance(event, EpochStats):
                self._gather_epoch(entry, event, val_loss, metric_points)
            elif isinstance(event, RunStarted):  # where the run will end: the views grow towards it
                for chart in (self.loss_chart, self.lr_chart, self.throughput_chart):
                    chart.x_plan = float(event.total_epochs * event.steps_per_epoch)
                self.metric_chart.x_plan = float(event.total_epochs)
        entry.throughput = rate
        if steps:
            self.loss_chart.add_points(self._series(self.loss_chart, entry, "train"), steps, losses)
            self.lr_chart.add_points(self._series(self.lr_chart, entry, "lr"), steps, lrs)
            self.throughput_chart.add_points(self._series(self.throughput_chart, entry, "rate"), steps, rates)
        if val_loss[0]:
            self.loss_chart.add_points(self._series(self.loss_chart, entry, "val"), *val_loss)
        for kind, (xs, ys) in metric_points.items():
            if xs:
                self.metric_chart.add_points(self._series(self.metric_chart, entry, kind), xs, ys)

    def _gather_epoch(self, entry: RunEntry, event: EpochStats, val_loss: tuple[list[float], list[float]],
                      metric_points: dict[str, tuple[list[float], list[float]]]) -> None:
        if "loss" in event.val:
            val_loss[0].append(event.step)
            val_loss[1].append(event.val["loss"])
        metric = entry.metric or next((k for k in (*event.val, *event.train) if k != "loss"), "")
        if not metric:
            return
        if not entry.metric:
            entry.metric = metric
            self.metric_chart.set_title(metric.replace("_", " ").capitalize(), metric.replace("_", " "))
            self.metric_chart.ceiling = 1.0 if _is_share(metric) else None
        for kind, values in (("train", event.train), ("val", event.val)):
            if metric in values:
                metric_points[kind][0].append(event.epoch + 1)
                metric_points[kind][1].append(values[metric])

    def redraw(self, force: bool = False) -> bool:
        """Draw what arrived, when the run's GUI budget allows; True if a frame began.

        A frame (setting the curves and painting the four charts) costs a few milliseconds, and
        every millisecond the GUI thread holds the GIL is taken from the training thread. So frames
        come at most ``max_rate`` times a second and only while the run's :attr:`budget` is not
        spent (:class:`~studio.ui.gui_budget.GuiBudget`: a share of the run's time, measured on the
        GUI thread's clock); a frame refused now is drawn by a timer once the budget allows, so the
        last points always appear. A frame updates one chart per event-loop turn, so the loop is
        never held for the whole frame. ``force`` draws everything at once (the end of a run) and
        fits the views to the data.
        """
        if force:
            self._slices.clear()
            self._slice_timer.stop()
            self._pending.stop()
            drawn = sum(chart.redraw() for chart in self.charts.values())
            for chart in self.charts.values():
                if chart.following:
                    chart.fit_view(tight=True)
            self.frames += 1 if drawn else 0
            return bool(drawn)
        if self._slices:
            return False  # the frame in progress takes the new points too
        now = time.perf_counter()
        wait = max(self._next_frame - now, self.budget.wait_s())
        if wait > 0:
            if not self._pending.isActive():
                self._pending.start(int(wait * 1000) + 1)
            return False
        self._pending.stop()
        # the learning rate and throughput charts, which a person reads less closely, every other frame:
        # a frame of the loss and metric charts alone costs half as much, so they come more often
        secondary = self.frames % 2 == 1
        self._slices = [c for c in self.charts.values() if c.has_new_points and not (secondary and c in self._secondary)]
        if not self._slices:
            return False
        self.frames += 1
        self._next_frame = now + 1.0 / self.max_rate
        self._draw_slice()
        return True

    @Slot()
    def _draw_slice(self) -> None:
        if not self._slices:
            return
        cpu = time.thread_time()
        self._slices.pop(0).redraw()
        self.slice_cpu_s.append(time.thread_time() - cpu)
        if self._slices:  # the frame's next chart, when the budget allows (a frame overdraws it by one chart)
            wait = self.budget.wait_s()
            self._slice_timer.start(int(wait * 1000) + 1 if wait > 0 else 0)

    @Slot()
    def _draw_pending(self) -> None:
        self.redraw()

    def count(self, chart: str, kind: str, run: str | None = None) -> int:
        """Points received by a series of a run (the current one by default): for tests and checks."""
        key = run or (self.current.key if self.current else "")
        return self.charts[chart].point_count(f"{key}/{kind}")


def _is_share(metric: str) -> bool:
    """Metrics that cannot exceed 1 (accuracy, F1, precision, recall, R²)."""
    name = metric.lower()
    return "accuracy" in name or name.split("_")[-1] in ("f1", "precision", "recall", "r2", "auc")


def _brush(colour: tuple[int, int, int]):  # noqa: ANN202 - a QBrush
    from PySide6.QtGui import QBrush, QColor

    return QBrush(QColor(*colour))
