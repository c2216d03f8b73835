"""The live training dashboard: loss, metric, learning rate and throughput, runs overlaid (REQ-U03, REQ-U15).

Each run gets a colour; its training curve is solid and its validation curve dashed.
Runs stay listed with a check box that shows or hides their curves (and legend entries), and
any chart exports to PNG. The dashboard only draws what :meth:`Dashboard.feed` gives it: batches
of core events delivered by the coalesced drain.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

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

from studio.backend.core.events import EpochStats, StepStats
from studio.ui.charts import RUN_COLOURS, LiveChart

__all__ = ["Dashboard", "RunEntry"]

_EMA = 0.1  # smoothing of the per-step throughput, so the chart reads as a rate, not noise


@dataclass
class RunEntry:
    key: str
    label: str
    colour: tuple[int, int, int]
    item: QListWidgetItem
    metric: str = ""
    throughput: float | None = None
    summary: str = ""
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
        self.duty = 0.05  # share of wall time the charts (taking points in and drawing) may take from the trainer
        self.frames = 0
        self.last_frame_cost = 0.0
        self._next_frame = 0.0
        self._pending = QTimer(self)
        self._pending.setSingleShot(True)
        self._pending.timeout.connect(self._draw_pending)
        self._slices: list[LiveChart] = []
        self._slice_timer = QTimer(self)
        self._slice_timer.setSingleShot(True)
        self._slice_timer.setInterval(0)
        self._slice_timer.timeout.connect(self._draw_slice)
        self._frame_started = 0.0
        self._frame_cost = 0.0
        self._feed_cost = 0.0  # taking points in since the last frame began: counted in the next frame's cost
        self.slice_cpu_s: deque[float] = deque(maxlen=10_000)  # GUI-thread CPU time per chart update

    # -- runs ---------------------------------------------------------------------------------
    def new_run(self, description: str = "") -> RunEntry:
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
        entry = RunEntry(key, description, colour, item)
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
        return entry

    def continue_run(self, key: str) -> RunEntry:
        """Keep drawing into an earlier run (Train more continues its curves)."""
        self.current = self.runs[key]
        self.current.throughput = None
        for chart in self.charts.values():
            chart.recede_series()
            chart.emphasise_series([n for n in chart.series_names() if n.split("/")[0] == key])
        return self.current

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
            chart.series(name, colour=entry.colour, dashed=dashed,
                         label=f"{entry.key} {kind}" if kind in ("train", "val") else entry.key)
            if entry.item.checkState() != Qt.CheckState.Checked:
                chart.set_series_visible(name, False)
        return name

    def feed(self, batch: list) -> None:
        """Add a batch of core events of the current run (step and epoch statistics).

        Every GUI-thread millisecond is taken from the training thread (the GIL), so the batch is
        gathered into one list per series first and each series gets one ``add_points`` per batch,
        however many steps and epochs the batch holds (a fast run ends dozens of epochs a second).
        """
        entry = self.current
        if entry is None:
            return
        started = time.perf_counter()
        try:
            self._feed(entry, batch)
        finally:
            self._feed_cost += time.perf_counter() - started

    def _feed(self, entry: RunEntry, batch: list) -> None:
        steps: list[float] = []
        losses: list[float] = []
        lrs: list[float] = []
        rates: list[float] = []
        rate = entry.throughput
        val_loss: tuple[list[float], list[float]] = ([], [])
        metric_points: dict[str, tuple[list[float], list[float]]] = {"train": ([], []), "val": ([], [])}
        for event in batch:
            if isinstance(event, StepStats):
                steps.append(event.step)
                losses.append(event.loss)
                lrs.append(event.lr)
                sps = event.samples_per_s if event.samples_per_s < float("inf") else (rate or 0.0)
                rate = sps if rate is None else rate + _EMA * (sps - rate)
                rates.append(rate)
            elif isinstance(event, EpochStats):
                self._gather_epoch(entry, event, val_loss, metric_points)
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
        """Draw what arrived, unless that would exceed the GUI-time budget; True if a frame began.

        A frame (setting the curves and painting the four charts) costs a few milliseconds on a
        fast machine and tens on a slow one, and every millisecond the GUI thread holds the GIL is
        taken from the training thread. So frames are spaced at least ``1 / max_rate`` apart and
        at least ``cost / duty`` apart, where the cost includes taking the points in (:meth:`feed`):
        charts stay live while they use at most ``duty`` of the time. A frame is drawn one chart per event-loop turn, so the loop is never held for the
        whole frame; a skipped frame is drawn later by a timer, so the last points always appear.
        ``force`` draws everything at once (the end of a run) and fits the views to the data.
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
        if now < self._next_frame:
            if not self._pending.isActive():
                self._pending.start(max(1, int((self._next_frame - now) * 1000)))
            return False
        self._pending.stop()
        self._slices = [c for c in self.charts.values() if c.has_new_points]
        if not self._slices:
            return False
        self.frames += 1
        self._frame_started = now
        # the last frame's paints and the points taken in since: the charts' whole share of the GUI thread
        self._frame_cost = sum(c.take_paint_seconds() for c in self.charts.values()) + self._feed_cost
        self._feed_cost = 0.0
        self._draw_slice()
        return True

    @Slot()
    def _draw_slice(self) -> None:
        if not self._slices:
            return
        started, cpu = time.perf_counter(), time.thread_time()
        self._slices.pop(0).redraw()
        self._frame_cost += time.perf_counter() - started
        self.slice_cpu_s.append(time.thread_time() - cpu)
        if self._slices:
            self._slice_timer.start()
        else:
            self.last_frame_cost = self._frame_cost
            self._next_frame = self._frame_started + max(1.0 / self.max_rate, self._frame_cost / self.duty)

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
